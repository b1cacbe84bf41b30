// machines.js -- the machine search (docs/admin.md, "Machine search"): each
// filter is an exact match, or a prefix match when it ends in '*'. The
// filters live in the address (#/machines?hostname=ws*), so a search can be
// bookmarked and the export links carry the same filters.
import { get } from '../api.js';
import { append, field, h, select, table } from '../dom.js';
import { fromUnix, query, statusText, time, toUnix } from '../format.js';

export const filterNames = ['group', 'serial', 'order', 'hostname', 'ip', 'mac', 'host_serial', 'status', 'from', 'to'];
const labels = {
  group: 'Group', serial: 'Key serial', order: 'Order', hostname: 'Hostname', ip: 'IP address',
  mac: 'MAC address', host_serial: 'Host serial',
};

export async function render(main, ctx) {
  const filters = {};
  for (const k of filterNames) filters[k] = ctx.query.get(k) || '';
  const limit = ctx.query.get('limit') || '50';
  const cursor = ctx.query.get('cursor') || '';
  append(main, h('h1', {}, 'Machines'), searchForm(filters, limit, ctx));

  const searched = filterNames.some((k) => filters[k]) || ctx.query.has('all');
  if (!searched) {
    append(main, h('p', { class: 'empty' }, 'Give a filter, or ', h('a', { href: '#/machines?all=1' }, 'list every machine'), '.'));
    return;
  }
  const page = await get(`/api/v1/machines${query({ ...filters, limit, cursor })}`);
  if (ctx.stale()) return;
  const rows = page.items || [];
  append(main, exportLinks(filters));
  append(main, h('p', { class: 'count', id: 'result-count' }, `${rows.length} machine${rows.length === 1 ? '' : 's'} on this page`));
  append(main, table({ text: 'Machines found', hidden: true }, [
    { title: 'Hostname', cell: (m) => h('a', { href: `#/machines/${encodeURIComponent(m.id)}` }, m.hostname || '(no hostname)') },
    { title: 'Status', cell: (m) => h('span', { class: `status status-${m.status}` }, statusText[m.status] ?? m.status) },
    { title: 'Order', cell: (m) => m.order || '—' },
    { title: 'Group / serial', cell: (m) => `${m.group} / ${m.serial}` },
    { title: 'IP', cell: (m) => m.ip || '' },
    { title: 'MACs', cell: (m) => (m.macs || []).join(' ') },
    { title: 'Host serial', cell: (m) => m.host_serial || '' },
    { title: 'OS', cell: (m) => m.os || '' },
    { title: 'Last seen', cell: (m) => time(m.last_seen) },
    { title: 'Expires', cell: (m) => time(m.expires_at) },
  ], rows, 'No machine matches.'));
  const base = { ...filters, limit };
  append(main, h('nav', { class: 'pager', 'aria-label': 'Pages' },
    cursor ? h('a', { class: 'button secondary', href: `#/machines${query({ ...base, all: ctx.query.get('all') })}` }, 'First page') : null,
    page.next_cursor
      ? h('a', { class: 'button', id: 'next-page', href: `#/machines${query({ ...base, all: ctx.query.get('all'), cursor: page.next_cursor })}` }, 'Next page')
      : h('span', { class: 'hint' }, 'Last page.')));
}

function searchForm(filters, limit, ctx) {
  const inputs = {};
  const fields = [];
  for (const k of ['hostname', 'ip', 'mac', 'host_serial', 'order', 'group', 'serial']) {
    inputs[k] = h('input', { name: k, value: filters[k], autocomplete: 'off', spellcheck: 'false' });
    fields.push(field(labels[k], inputs[k]));
  }
  inputs.status = select('status', [['', 'any'], ...Object.entries(statusText)], filters.status);
  fields.push(field('Status', inputs.status));
  inputs.from = h('input', { name: 'from', type: 'datetime-local', value: fromUnix(filters.from) });
  inputs.to = h('input', { name: 'to', type: 'datetime-local', value: fromUnix(filters.to) });
  fields.push(field('Last contact from (UTC)', inputs.from), field('Last contact to (UTC)', inputs.to));
  const lim = select('limit', [['25', '25'], ['50', '50'], ['100', '100'], ['500', '500']], limit);
  fields.push(field('Per page', lim));
  return h('form', {
    class: 'filters',
    role: 'search',
    onsubmit: (ev) => {
      ev.preventDefault();
      const f = {};
      for (const k of filterNames) {
        const v = k === 'from' || k === 'to' ? toUnix(inputs[k].value) : inputs[k].value.trim();
        if (v) f[k] = v;
      }
      ctx.navigate(`/machines${query({ ...f, limit: lim.value, all: Object.keys(f).length ? '' : '1' })}`);
    },
  },
  h('p', { class: 'hint wide' }, 'Each text filter matches exactly; end it with * to match a prefix (ws-00*).'),
  fields,
  h('div', { class: 'actions' },
    h('button', { type: 'submit' }, 'Search'),
    h('a', { class: 'button secondary', href: '#/machines' }, 'Clear')));
}

function exportLinks(filters) {
  const f = {};
  for (const k of filterNames) if (filters[k]) f[k] = filters[k];
  return h('p', { class: 'exports' }, 'Export this search: ',
    ['csv', 'json', 'xlsx'].map((format) =>
      h('a', { class: 'button secondary', href: `/api/v1/machines/export${query({ format, ...f })}`, download: '' }, format.toUpperCase())));
}
