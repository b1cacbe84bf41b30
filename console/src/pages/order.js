// order.js -- one order: its terms, seats and warning, and a link to its
// machines in the search.
import { get, seg } from '../api.js';
import { append, h, seatBar } from '../dom.js';
import { query, time } from '../format.js';
import { seatsOf, serialOf, warningText } from '../seats.js';

const shown = new Set(['service_serial', 'customer', 'seats_status', 'counters']);

export async function render(main, ctx) {
  const o = await get(`/api/v1/orders/${seg(ctx.params.serial)}`);
  if (ctx.stale()) return;
  const s = seatsOf(o);
  const serial = serialOf(o);
  append(main, 
    h('p', { class: 'crumbs' }, h('a', { href: '#/orders' }, 'Orders'), ' / ', serial),
    h('h1', {}, `Order ${serial}`),
    s.warning && !o.retired ? h('div', { class: 'banner warn', role: 'alert' }, warningText(o)) : null,
    h('section', { class: 'card' },
      h('h2', {}, 'Seats'),
      s.unlimited ? h('p', {}, `${s.used} in use (unlimited order)`) : seatBar(s.used, s.total, s.warning),
      h('p', {}, s.warnAt ? `Warning below ${s.warnAt} free seats.` : 'No seat warning set.'),
      h('p', {}, `${o.seats_status?.machines ?? 0} machines in its table.`),
      h('p', {}, h('a', { href: `#/machines${query({ order: serial })}` }, 'Machines of this order'))),
    h('section', { class: 'card' },
      h('h2', {}, 'Terms'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Customer'), h('dd', {}, o.customer ?? ''),
        Object.entries(o).filter(([k]) => !shown.has(k)).map(([k, v]) => [
          h('dt', {}, k.replace(/_/g, ' ')),
          h('dd', {}, /(^|_)(at|from|until)$/.test(k) && typeof v === 'number' ? time(v) : display(v)),
        ]))));
}

// A term's value: lists joined, objects (the terms, the usage return) as a
// list of their own, nothing shown as raw JSON.
function display(v) {
  if (v === null || v === undefined || v === '') return '—';
  if (Array.isArray(v)) return v.length ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') : '—';
  if (typeof v === 'object') {
    const entries = Object.entries(v);
    if (!entries.length) return '—';
    return h('dl', { class: 'facts nested' }, entries.map(([k, x]) => [h('dt', {}, k.replace(/_/g, ' ')), h('dd', {}, display(x))]));
  }
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}
