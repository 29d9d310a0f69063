/**
 * The "nbdebug" sidebar panel: renders the link of the active notebook. Every string
 * from the kernel goes through textContent, never innerHTML.
 */

import { Widget } from '@lumino/widgets';

import { renderChart, formatNumber } from './chart';
import { IRunView, NotebookLink } from './link';
import { IChecklistItem, IFinding } from './protocol';

const STATUS_ICON: { [status: string]: string } = {
  ok: '✓',
  warning: '⚠',
  problem: '✗',
  not_applicable: '–',
  not_checked: '·',
  pending: '…'
};

const FLAGGED = ['problem', 'warning'];

const STATE_WORDS: { [state: string]: string } = {
  running: 'running',
  done: 'done',
  failed: 'failed',
  interrupted: 'interrupted',
  stopped: 'stopped by user',
  exited: 'exited'
};

/** Elapsed time ticks locally between snapshots at this period. */
const TICK_MS = 500;

export interface IPanelTarget {
  title: string;
  link: NotebookLink;
  selectCell(cellId: string | null, executionCount: number | null): void;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = cls;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

export class SidebarPanel extends Widget {
  constructor() {
    super();
    this.id = 'nbdebug-sidebar';
    this.addClass('nbd-panel');
    this.title.caption = 'nbdebug: the diagnosis of the active notebook';
    this._timer = window.setInterval(() => this._tick(), TICK_MS);
    this.render();
  }

  setTarget(target: IPanelTarget | null): void {
    if (this._target) {
      this._target.link.changed.disconnect(this.render, this);
    }
    this._target = target;
    if (target) {
      target.link.changed.connect(this.render, this);
    }
    this.render();
  }

  dispose(): void {
    window.clearInterval(this._timer);
    super.dispose();
  }

  render(): void {
    const root = this.node;
    root.replaceChildren();
    root.appendChild(el('div', 'nbd-header', 'nbdebug'));
    const target = this._target;
    if (!target) {
      root.appendChild(el('div', 'nbd-note', 'Open a notebook to see its diagnosis.'));
      return;
    }
    root.appendChild(el('div', 'nbd-notebook', target.title));
    const link = target.link;
    const conn = el('div', 'nbd-connection');
    conn.dataset.status = link.status;
    if (link.status === 'no-kernel') {
      conn.textContent = 'No kernel.';
    } else if (link.status === 'not-loaded') {
      conn.textContent =
        'nbdebug is not loaded in this kernel: run %load_ext nbdebug, then %%diagnose ' +
        'above a training cell.';
    } else if (link.status === 'mismatch') {
      conn.textContent = link.note;
    } else {
      conn.textContent = link.run
        ? `nbdebug ${link.kernelNbdebug}`
        : `nbdebug ${link.kernelNbdebug} is loaded: put %%diagnose above a training cell.`;
    }
    root.appendChild(conn);
    if (link.status === 'connected' && link.run) {
      this._renderRun(root, link, link.run);
    }
  }

  private _renderRun(root: HTMLElement, link: NotebookLink, run: IRunView): void {
    const bar = el('div', 'nbd-run');
    const state = el('span', 'nbd-state', STATE_WORDS[run.state] ?? run.state);
    state.dataset.state = run.state;
    bar.appendChild(state);
    const steps = run.done?.steps ?? run.snapshot?.steps ?? 0;
    bar.appendChild(el('span', 'nbd-steps', `${steps} steps`));
    this._elapsed = el('span', 'nbd-elapsed', this._elapsedText(run));
    bar.appendChild(this._elapsed);
    root.appendChild(bar);

    if (run.state === 'running') {
      const stop = el('button', 'nbd-stop jp-mod-styled jp-mod-warn');
      if (link.subshell === false) {
        stop.textContent = 'Stop unavailable: needs kernel subshells (ipykernel 7)';
        stop.disabled = true;
      } else if (run.stopRequested) {
        stop.textContent = 'Stopping at the next step…';
        stop.disabled = true;
      } else {
        stop.textContent = 'Stop training';
      }
      stop.onclick = () => link.stop();
      root.appendChild(stop);
    }

    if (run.done?.exception) {
      root.appendChild(el('div', 'nbd-exception', run.done.exception));
    }
    const nan = run.snapshot?.nan;
    if (nan && run.state === 'running') {
      root.appendChild(
        el(
          'div',
          'nbd-live-nan',
          `${nan.kind} at step ${nan.step} (${nan.phase}${nan.where ? ', ' + nan.where : ''})`
        )
      );
    }
    const charts = el('div', 'nbd-charts');
    charts.appendChild(renderChart('loss', run.snapshot?.loss, false));
    charts.appendChild(renderChart('gradient norm', run.snapshot?.grad_norm, true));
    root.appendChild(charts);

    const checklist = run.done?.checklist ?? run.snapshot?.checklist;
    if (run.done) {
      const head = `${run.done.problems} problem(s), ${run.done.warnings} warning(s)`;
      root.appendChild(el('div', 'nbd-summary', head));
    }
    if (checklist) {
      root.appendChild(this._renderChecklist(checklist));
    }
    if (run.findings.length) {
      const box = el('div', 'nbd-findings');
      for (const f of run.findings) {
        box.appendChild(this._renderFinding(f, run));
      }
      root.appendChild(box);
    }
  }

  /**
   * The checklist in the report's reading order: problems and warnings, then the ok
   * items folded into one line, then the rest (pending while the run goes on, not
   * applicable, not checked) folded into another.
   */
  private _renderChecklist(items: IChecklistItem[]): HTMLElement {
    const box = el('div', 'nbd-checklist');
    box.dataset.live = String(items.some(i => i.status === 'pending'));
    const flagged = FLAGGED.flatMap(s => items.filter(i => i.status === s));
    const ok = items.filter(i => i.status === 'ok');
    const rest = items.filter(i => i.status !== 'ok' && !FLAGGED.includes(i.status));
    const list = el('ul', 'nbd-list');
    flagged.forEach(i => list.appendChild(this._renderItem(i)));
    box.appendChild(list);
    const fold = (kind: string, label: string, group: IChecklistItem[]) => {
      const details = el('details', `nbd-fold nbd-fold-${kind}`);
      details.open = this._opened.has(kind);
      details.ontoggle = () => {
        details.open ? this._opened.add(kind) : this._opened.delete(kind);
      };
      details.appendChild(el('summary', 'nbd-fold-head', label));
      const ul = el('ul', 'nbd-list');
      group.forEach(i => ul.appendChild(this._renderItem(i)));
      details.appendChild(ul);
      box.appendChild(details);
    };
    if (ok.length) {
      fold('ok', `✓ ${ok.length} ok`, ok);
    }
    if (rest.length) {
      const counts = new Map<string, number>();
      rest.forEach(i => counts.set(i.status, (counts.get(i.status) ?? 0) + 1));
      const words = [...counts].map(([s, n]) => `${n} ${s.replace('_', ' ')}`);
      fold('rest', words.join(', '), rest);
    }
    return box;
  }

  private _renderItem(item: IChecklistItem): HTMLElement {
    const li = el('li', 'nbd-item');
    li.dataset.point = String(item.point);
    li.dataset.status = item.status;
    li.title = item.status.replace('_', ' ');
    li.appendChild(el('span', 'nbd-icon', STATUS_ICON[item.status] ?? '?'));
    const label = typeof item.point === 'number' ? `${item.point}. ` : '';
    li.appendChild(el('span', 'nbd-item-title', label + item.title));
    li.appendChild(el('span', 'nbd-item-status', item.status.replace('_', ' ')));
    return li;
  }

  private _renderFinding(f: IFinding, run: IRunView): HTMLElement {
    const card = el('div', 'nbd-finding');
    card.dataset.severity = f.severity;
    card.dataset.point = String(f.point);
    card.title = 'Click to select the cell that ran this diagnosis';
    const icon = f.severity === 'info' ? 'ℹ' : STATUS_ICON[f.severity];
    const where = f.where ? ` (${f.where})` : '';
    card.appendChild(
      el('div', 'nbd-finding-title', `${icon} ${f.point}: ${f.title}${where}`)
    );
    card.appendChild(el('div', 'nbd-finding-message', f.message));
    // the evidence in words, as in the report: "sampler SequentialSampler · epochs 16"
    // (the replay's details are told by the message; the report's JSON keeps them)
    const ev = Object.entries(f.evidence ?? {}).filter(([k]) => k !== 'replay');
    if (ev.length) {
      const words = ev.slice(0, 8).map(([k, v]) => {
        const text =
          typeof v === 'number'
            ? formatNumber(v)
            : typeof v === 'string'
              ? v
              : JSON.stringify(v);
        return `${k.replace(/_/g, ' ')} ${text.slice(0, 200)}`;
      });
      card.appendChild(el('div', 'nbd-evidence', `Evidence: ${words.join(' · ')}`));
    }
    card.appendChild(el('div', 'nbd-finding-fix', `Fix: ${f.fix}`));
    card.onclick = () =>
      this._target?.selectCell(run.start.cell, run.start.execution_count);
    return card;
  }

  private _elapsedText(run: IRunView): string {
    let s = run.done?.elapsed ?? run.snapshot?.elapsed ?? 0;
    if (run.state === 'running') {
      s += (Date.now() - run.snapshotAt) / 1000;
    }
    return `${s.toFixed(1)} s`;
  }

  private _tick(): void {
    const run = this._target?.link.run;
    if (run && run.state === 'running' && this._elapsed) {
      this._elapsed.textContent = this._elapsedText(run);
    }
  }

  private _target: IPanelTarget | null = null;
  private _opened = new Set<string>();
  private _timer: number;
  private _elapsed: HTMLElement | null = null;
}
