/**
 * A small SVG line chart built with DOM calls (no HTML strings): the last value as text,
 * the series as a polyline; missing (non-finite) values break the line.
 */

import { IChart } from './protocol';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 240;
const HEIGHT = 48;

export function renderChart(
  label: string,
  chart: IChart | undefined,
  log: boolean
): HTMLElement {
  const box = document.createElement('div');
  box.className = 'nbd-chart';
  box.dataset.series = label;
  const head = document.createElement('div');
  head.className = 'nbd-chart-head';
  const values = chart?.values ?? [];
  const last = [...values].reverse().find(v => v !== null);
  head.textContent =
    `${label}: ` + (last === undefined || last === null ? '–' : formatNumber(last));
  box.appendChild(head);
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'nbd-chart-svg');
  box.appendChild(svg);
  if (!chart || chart.steps.length < 2) {
    return box;
  }
  const tf = (v: number) => (log ? Math.log10(Math.max(v, 1e-12)) : v);
  const ys = chart.values.map(v => (v === null ? null : tf(v)));
  const finite = ys.filter((v): v is number => v !== null);
  if (finite.length === 0) {
    return box;
  }
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const x0 = chart.steps[0];
  const x1 = chart.steps[chart.steps.length - 1];
  const sx = (s: number) => (x1 === x0 ? 0 : ((s - x0) / (x1 - x0)) * WIDTH);
  const sy = (v: number) =>
    hi === lo ? HEIGHT / 2 : HEIGHT - 2 - ((v - lo) / (hi - lo)) * (HEIGHT - 4);
  let points: string[] = [];
  const flush = () => {
    if (points.length > 1) {
      const line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('points', points.join(' '));
      line.setAttribute('class', 'nbd-chart-line');
      svg.appendChild(line);
    }
    points = [];
  };
  ys.forEach((v, i) => {
    if (v === null) {
      flush();
    } else {
      points.push(`${sx(chart.steps[i]).toFixed(1)},${sy(v).toFixed(1)}`);
    }
  });
  flush();
  return box;
}

export function formatNumber(v: number): string {
  if (Number.isInteger(v) && Math.abs(v) < 1e9) {
    return String(v);
  }
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) {
    return v.toExponential(2);
  }
  return v.toPrecision(4);
}
