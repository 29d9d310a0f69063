/**
 * The sidebar protocol, front-end side. Mirrors nbdebug/frontend/protocol.py:
 * PROTOCOL_VERSION is defined once here and once there; both sides compare it at hello.
 *
 * Data comm (kernel -> sidebar): hello (its open message), start, snapshot, finding, done.
 * Control comm (sidebar -> kernel, over a kernel subshell): hello, stop.
 */

export const PROTOCOL_VERSION = 1;
export const DATA_TARGET = 'nbdebug.data';
export const CONTROL_TARGET = 'nbdebug.control';

/** Findings kept per run: the kernel sends a few; more would be a runaway. */
export const MAX_FINDINGS = 200;

export type RunState =
  | 'running'
  | 'done'
  | 'failed'
  | 'interrupted'
  | 'stopped'
  | 'exited';

export interface IChart {
  steps: number[];
  values: (number | null)[];
}

export interface IHello {
  type: 'hello';
  version: number;
  nbdebug: string;
  for: string | null;
  subshell: boolean | null;
}

export interface IStart {
  type: 'start';
  run: number;
  cell: string | null;
  execution_count: number | null;
}

export interface ISnapshot {
  type: 'snapshot';
  run: number;
  steps: number;
  elapsed: number;
  loss: IChart;
  grad_norm: IChart;
  nan: { step: number; phase: string; where: string | null; kind: string } | null;
  /** the live checklist ("pending" until a check can judge); absent from older kernels */
  checklist?: IChecklistItem[];
}

export interface IFinding {
  type: 'finding';
  run: number;
  index: number;
  check: string;
  point: number | string;
  severity: 'problem' | 'warning' | 'info';
  title: string;
  message: string;
  fix: string;
  where: string | null;
  step: number | null;
  evidence: { [key: string]: unknown };
}

export interface IChecklistItem {
  point: number | string;
  title: string;
  status: string;
}

export interface IDone {
  type: 'done';
  run: number;
  status: RunState;
  steps: number;
  elapsed: number;
  findings: number;
  problems: number;
  warnings: number;
  checklist: IChecklistItem[];
  exception: string | null;
  errors: number;
}

export type DataMessage = IHello | IStart | ISnapshot | IFinding | IDone;

function isObject(x: unknown): x is { [key: string]: unknown } {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isChart(x: unknown): x is IChart {
  return isObject(x) && Array.isArray(x.steps) && Array.isArray(x.values);
}

/** The message if it has the shape its type promises, else null (it is then ignored). */
export function parseData(x: unknown): DataMessage | null {
  if (!isObject(x) || typeof x.type !== 'string') {
    return null;
  }
  const num = (v: unknown) => typeof v === 'number' && isFinite(v);
  switch (x.type) {
    case 'hello':
      return num(x.version) ? (x as unknown as IHello) : null;
    case 'start':
      return num(x.run) ? (x as unknown as IStart) : null;
    case 'snapshot':
      return num(x.run) && num(x.steps) && isChart(x.loss) && isChart(x.grad_norm)
        ? (x as unknown as ISnapshot)
        : null;
    case 'finding':
      return num(x.run) && typeof x.message === 'string' && typeof x.severity === 'string'
        ? (x as unknown as IFinding)
        : null;
    case 'done':
      return num(x.run) && Array.isArray(x.checklist) ? (x as unknown as IDone) : null;
    default:
      return null;
  }
}
