/**
 * One connection per notebook: the data comm the kernel opened, the control comm this
 * page opened over a kernel subshell, and the state of the latest %%diagnose run.
 */

import { ISessionContext } from '@jupyterlab/apputils';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import {
  CONTROL_TARGET,
  DATA_TARGET,
  IDone,
  IFinding,
  ISnapshot,
  IStart,
  MAX_FINDINGS,
  PROTOCOL_VERSION,
  RunState,
  parseData
} from './protocol';

export type LinkStatus = 'no-kernel' | 'not-loaded' | 'connected' | 'mismatch';

export interface IRunView {
  start: IStart;
  state: RunState;
  snapshot: ISnapshot | null;
  snapshotAt: number;
  findings: IFinding[];
  done: IDone | null;
  stopRequested: boolean;
}

export class NotebookLink {
  constructor(sessionContext: ISessionContext) {
    this._session = sessionContext;
    sessionContext.kernelChanged.connect(this._onKernelChanged, this);
    sessionContext.statusChanged.connect(this._onStatus, this);
    this._connect(sessionContext.session?.kernel ?? null);
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  status: LinkStatus = 'no-kernel';
  /** Why the link is not connected, in words (version mismatch, ...). */
  note = '';
  kernelNbdebug = '';
  /** Whether the control comm runs over a subshell (Stop works while a cell runs). */
  subshell: boolean | null = null;
  run: IRunView | null = null;

  stop(): boolean {
    if (!this._control || !this.run || this.run.state !== 'running' || !this.subshell) {
      return false;
    }
    this._control.send({ type: 'stop', run: this.run.start.run });
    this.run.stopRequested = true;
    this._changed.emit();
    return true;
  }

  dispose(): void {
    this._session.kernelChanged.disconnect(this._onKernelChanged, this);
    this._session.statusChanged.disconnect(this._onStatus, this);
    this._unregister();
    Signal.clearData(this);
  }

  private _onKernelChanged(): void {
    this._connect(this._session.session?.kernel ?? null);
  }

  private _onStatus(_: ISessionContext, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      this._clear(this._kernel ? 'not-loaded' : 'no-kernel');
    }
  }

  private _clear(status: LinkStatus): void {
    this._data = null;
    this._control = null;
    this.run = null;
    this.subshell = null;
    this.note = '';
    this.status = status;
    this._changed.emit();
  }

  private _unregister(): void {
    if (this._kernel && !this._kernel.isDisposed) {
      this._kernel.removeCommTarget(DATA_TARGET, this._onDataOpen);
    }
  }

  private _connect(kernel: Kernel.IKernelConnection | null): void {
    this._unregister();
    this._kernel = kernel;
    this._clear(kernel ? 'not-loaded' : 'no-kernel');
    if (!kernel) {
      return;
    }
    kernel.registerCommTarget(DATA_TARGET, this._onDataOpen);
    // after a browser reload the kernel may already have nbdebug loaded: ask it
    void this._openControl();
  }

  private _onDataOpen = (
    comm: Kernel.IComm,
    msg: KernelMessage.ICommOpenMsg
  ): void => {
    const hello = parseData(msg.content.data);
    if (!hello || hello.type !== 'hello') {
      return;
    }
    const mine = hello.for !== null && hello.for === this._control?.commId;
    if (!mine && (hello.for !== null || this._data !== null)) {
      return; // another page's comm, or a second announcement: keep ours
    }
    this._data = comm;
    comm.onMsg = m => this._onData(comm, m.content.data);
    comm.onClose = () => {
      if (this._data === comm) {
        this._clear('not-loaded');
      }
    };
    this.kernelNbdebug = String(hello.nbdebug ?? '');
    if (hello.version !== PROTOCOL_VERSION) {
      this.status = 'mismatch';
      this.note =
        `protocol mismatch: the kernel's nbdebug ${this.kernelNbdebug} speaks ` +
        `version ${hello.version}, this sidebar ${PROTOCOL_VERSION}; install the same ` +
        'nbdebug in the kernel and in JupyterLab';
      this._changed.emit();
      return;
    }
    this.status = 'connected';
    this._changed.emit();
    if (!mine) {
      void this._openControl();
    }
  };

  private async _openControl(): Promise<void> {
    const kernel = this._kernel;
    if (!kernel) {
      return;
    }
    try {
      await kernel.info;
      if (kernel !== this._kernel || kernel.isDisposed) {
        return;
      }
      // CommHandler (the IComm implementation) runs comms over a subshell per target
      // when the kernel supports them; IComm does not declare these members yet
      const comm = kernel.createComm(CONTROL_TARGET) as Kernel.IComm & {
        subshellStarted?: Promise<void>;
        commsOverSubshells?: string;
      };
      const subshell =
        kernel.supportsSubshells &&
        comm.subshellStarted !== undefined &&
        comm.commsOverSubshells !== 'disabled';
      if (subshell) {
        await comm.subshellStarted;
      }
      this._control = comm;
      this.subshell = subshell;
      comm.onClose = () => {
        if (this._control === comm) {
          this._control = null;
        }
      };
      comm.open({
        type: 'hello',
        version: PROTOCOL_VERSION,
        data_comm: this._data?.commId ?? null,
        control_comm: comm.commId,
        subshell
      });
      this._changed.emit();
    } catch (reason) {
      console.warn('nbdebug: could not open the control comm', reason);
    }
  }

  private _onData(comm: Kernel.IComm, data: unknown): void {
    if (comm !== this._data || this.status !== 'connected') {
      return;
    }
    const msg = parseData(data);
    if (!msg) {
      console.warn('nbdebug: ignored a malformed sidebar message');
      return;
    }
    if (msg.type === 'hello') {
      return;
    }
    if (msg.type === 'start') {
      this.run = {
        start: msg,
        state: 'running',
        snapshot: null,
        snapshotAt: Date.now(),
        findings: [],
        done: null,
        stopRequested: false
      };
      this._changed.emit();
      return;
    }
    const run = this.run;
    if (!run || msg.run !== run.start.run) {
      return; // a message of an older run
    }
    if (msg.type === 'snapshot') {
      // the live checklist comes only when it changed: keep the last one
      run.snapshot = msg.checklist ? msg : { ...msg, checklist: run.snapshot?.checklist };
      run.snapshotAt = Date.now();
    } else if (msg.type === 'finding') {
      if (run.findings.length < MAX_FINDINGS) {
        run.findings.push(msg);
      }
    } else if (msg.type === 'done') {
      run.done = msg;
      run.state = msg.status;
    }
    this._changed.emit();
  }

  private _session: ISessionContext;
  private _kernel: Kernel.IKernelConnection | null = null;
  private _data: Kernel.IComm | null = null;
  private _control: Kernel.IComm | null = null;
  private _changed = new Signal<this, void>(this);
}
