// threats.js -- the threat view (GET /api/v1/threats): the not-genuine
// rate per group over time, rate-limit refusals, the addresses with the
// most refusals, and revocations. Each chart has its numbers as a table
// beside it (under "Show the numbers"), for keyboards and screen readers.
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip,
} from 'chart.js';
import { get } from '../api.js';
import { append, field, h, table } from '../dom.js';
import { fromUnix, query, time, toUnix } from '../format.js';
import { stepFor, threatSeries } from '../threat_series.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip);

const palette = ['#1a5fb4', '#c01c28', '#26a269', '#a347ba', '#e5a50a', '#63452c', '#0e7c86', '#5e5c64'];
let charts = [];

export async function render(main, ctx) {
  for (const c of charts) c.destroy();
  charts = [];
  const now = Math.floor(Date.now() / 1000);
  const group = ctx.query.get('group') || '';
  const from = ctx.query.get('from') || String(now - 24 * 3600);
  const to = ctx.query.get('to') || String(now);
  const gIn = h('input', { name: 'group', value: group, inputmode: 'numeric', placeholder: 'all' });
  const fIn = h('input', { name: 'from', type: 'datetime-local', value: fromUnix(from) });
  const tIn = h('input', { name: 'to', type: 'datetime-local', value: fromUnix(to) });
  append(main, h('h1', {}, 'Threats'), h('form', {
    class: 'filters',
    onsubmit: (ev) => {
      ev.preventDefault();
      ctx.navigate(`/threats${query({ group: gIn.value.trim(), from: toUnix(fIn.value), to: toUnix(tIn.value) })}`);
    },
  }, field('Group', gIn), field('From (UTC)', fIn), field('To (UTC)', tIn), h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show'))));

  const data = threatSeries(await get(`/api/v1/threats${query({ group, from, to, step: stepFor(from, to) })}`));
  if (ctx.stale()) return;
  const grid = h('div', { class: 'charts' });
  append(main, grid);

  const labels = data.times.map((t) => time(t).slice(5, 16));
  grid.append(chartCard('Not-genuine rate per group', 'line', {
    labels,
    datasets: data.groups.map((g, i) => ({
      label: `group ${g.group}`, data: g.rate.map((r) => (r === null ? null : +(r * 100).toFixed(2))),
      borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length], spanGaps: true,
    })),
  }, '%', data.times.map((t, i) => [i, t]).filter(([i]) => data.groups.some((g) => g.rate[i] !== null))
    .map(([i, t]) => [time(t), ...data.groups.map((g) => (g.rate[i] === null ? '—' : `${(g.rate[i] * 100).toFixed(2)} % (${g.notGenuine[i]})`))]),
  ['Minute', ...data.groups.map((g) => `group ${g.group}`)]));

  grid.append(chartCard('Rate-limit refusals', 'line', {
    labels,
    datasets: data.groups.map((g, i) => ({
      label: `group ${g.group}`, data: g.rateLimited, borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length],
    })),
  }, 'refusals', data.times.map((t, i) => [i, t]).filter(([i]) => data.groups.some((g) => g.rateLimited[i] > 0))
    .map(([i, t]) => [time(t), ...data.groups.map((g) => String(g.rateLimited[i]))]),
  ['Minute', ...data.groups.map((g) => `group ${g.group}`)]));

  grid.append(chartCard('Top addresses by refusals', 'bar', {
    labels: data.top.map((a) => a.addr),
    datasets: [{ label: 'refusals', data: data.top.map((a) => a.count), backgroundColor: palette[1] }],
  }, 'refusals', data.top.map((a) => [a.addr, String(a.count)]), ['Address', 'Refusals'], 'y'));

  grid.append(chartCard('Revocations', 'bar', {
    labels: data.revocations.map((r) => time(r.t).slice(0, 16)),
    datasets: [{ label: 'revocations', data: data.revocations.map((r) => r.count), backgroundColor: palette[4] }],
  }, 'keys', data.revocations.map((r) => [time(r.t), String(r.count)]), ['When', 'Revocations']));
}

function chartCard(title, type, chartData, unit, rows, heads, indexAxis = 'x') {
  const id = `c${Math.random().toString(36).slice(2, 8)}`;
  const canvas = h('canvas', { role: 'img', 'aria-label': `${title} (chart; the numbers are below)` });
  const box = h('div', { class: 'chart-box' }, canvas);
  const card = h('section', { class: 'card chart', 'aria-labelledby': id },
    h('h2', { id }, title),
    rows.length ? box : h('p', { class: 'empty' }, 'Nothing in this time range.'),
    h('details', {}, h('summary', {}, 'Show the numbers'),
      table({ text: title, hidden: true }, heads.map((t, i) => ({ title: t, cell: (r) => r[i] })), rows)));
  if (rows.length) {
    charts.push(new Chart(canvas, {
      type,
      data: chartData,
      options: {
        indexAxis,
        animation: false,
        maintainAspectRatio: false,
        plugins: { legend: { display: chartData.datasets.length > 1 } },
        scales: { [indexAxis === 'x' ? 'y' : 'x']: { beginAtZero: true, title: { display: true, text: unit } } },
      },
    }));
  }
  return card;
}
