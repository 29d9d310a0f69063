/**
 * nbdebug-sidebar: a right-sidebar panel that follows the active notebook and shows its
 * latest %%diagnose run (state, live charts, checklist, findings) with a Stop button.
 */

import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { NotebookLink } from './link';
import { SidebarPanel } from './panel';

import iconSvg from '../style/icon.svg';

export const nbdebugIcon = new LabIcon({ name: 'nbdebug:icon', svgstr: iconSvg });

/**
 * Requests on the kernel's control channel whose status messages say nothing about the
 * main shell. JupyterLab sets the kernel's status from every iopub status message, so the
 * idle that follows a create_subshell_request (sent when a front end opens its first comm
 * over a subshell: the widget manager's when the first %%diagnose shows its dashboard)
 * made a busy kernel read "Idle" for the rest of the first diagnosed cell. Untracked,
 * their status messages are ignored, as jupyter_server already does for kernel_info.
 */
const CONTROL_REQUESTS = [
  'create_subshell_request',
  'delete_subshell_request',
  'list_subshell_request'
];

export function untrackSubshellRequests(): void {
  let current: string[] = [];
  try {
    current = JSON.parse(PageConfig.getOption('untracked_message_types') || '[]');
  } catch {
    current = [];
  }
  const merged = [...new Set([...current, ...CONTROL_REQUESTS])];
  PageConfig.setOption('untracked_message_types', JSON.stringify(merged));
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbdebug-sidebar:plugin',
  description: 'The nbdebug checklist and live metrics of the active notebook.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILabShell],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    labShell: ILabShell | null
  ) => {
    untrackSubshellRequests();
    const panel = new SidebarPanel();
    panel.title.icon = nbdebugIcon;
    panel.title.label = labShell ? '' : 'nbdebug';
    app.shell.add(panel, 'right', { rank: 900 });

    const links = new Map<NotebookPanel, NotebookLink>();
    const linkOf = (nb: NotebookPanel): NotebookLink => {
      let link = links.get(nb);
      if (!link) {
        link = new NotebookLink(nb.sessionContext);
        links.set(nb, link);
        nb.disposed.connect(() => {
          links.get(nb)?.dispose();
          links.delete(nb);
        });
      }
      return link;
    };
    const follow = () => {
      const nb = tracker.currentWidget;
      if (!nb) {
        panel.setTarget(null);
        return;
      }
      panel.setTarget({
        title: nb.title.label,
        link: linkOf(nb),
        selectCell: (cellId, count) => selectCell(app, nb, cellId, count)
      });
    };
    tracker.widgetAdded.connect((_, nb) => {
      linkOf(nb);
    });
    tracker.currentChanged.connect(follow);
    follow();
  }
};

/** Activate the notebook, select the cell that ran the diagnosis and scroll to it. */
function selectCell(
  app: JupyterFrontEnd,
  nb: NotebookPanel,
  cellId: string | null,
  count: number | null
): void {
  const notebook = nb.content;
  let index = notebook.widgets.findIndex(c => cellId !== null && c.model.id === cellId);
  if (index < 0 && count !== null) {
    index = notebook.widgets.findIndex(
      c => c.model.type === 'code' && (c.model as any).executionCount === count
    );
  }
  if (index < 0) {
    return;
  }
  app.shell.activateById(nb.id);
  notebook.deselectAll();
  notebook.activeCellIndex = index;
  void notebook.scrollToItem(index, 'center');
}

export default plugin;
