/**
 * nbdebug-sidebar: a right-sidebar panel that follows the active notebook and shows its
 * latest %%diagnose run (state, live charts, checklist, findings) with a Stop button.
 */

import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { NotebookLink } from './link';
import { SidebarPanel } from './panel';

import iconSvg from '../style/icon.svg';

export const nbdebugIcon = new LabIcon({ name: 'nbdebug:icon', svgstr: iconSvg });

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
