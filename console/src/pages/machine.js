// machine.js -- one machine: its facts, its history from the machine log,
// and the deactivation controls (volume machines whose control name is
// known: the row's digest, or its request in the approvals queue).
import { get } from '../api.js';
import { controlsFor } from '../controls.js';
import { append, h, table } from '../dom.js';
import { query, statusText, time } from '../format.js';
import { controlRef, directoryId } from '../machine_ref.js';

const opText = {
  activate: 'activated', renew: 'renewed', deactivate: 'deactivated', reclaimed: 'expired or reclaimed',
  pending: 'pending', deactivation_requested: 'deactivation requested',
};

export async function render(main, ctx) {
  const id = ctx.params.id;
  const m = await get(`/api/v1/machines/${encodeURIComponent(id)}`);
  const ref = controlRef(m) ?? (m.status === 'awaiting_approval' ? await refFromQueue(m) : null);
  if (ctx.stale()) return;
  const facts = [
    ['Status', statusText[m.status] ?? m.status],
    ['Order', m.order ? h('a', { href: `#/orders/${encodeURIComponent(m.order)}` }, m.order) : '—'],
    ['Group / key serial', m.order ? '—' : `${m.group} / ${m.serial}`],
    ['IP address', m.ip || '—'],
    ['MAC addresses', (m.macs || []).join(' ') || '—'],
    ['Host serial', m.host_serial || '—'],
    ['OS', m.os || '—'],
    ['First seen', time(m.first_seen)],
    ['Last seen', time(m.last_seen)],
    ['License expires', time(m.expires_at)],
    ['Directory id', m.id],
  ];
  append(main, 
    h('p', { class: 'crumbs' }, h('a', { href: '#/machines' }, 'Machines'), ' / ', m.hostname || m.id),
    h('h1', {}, `Machine ${m.hostname || m.id}`),
    h('section', { class: 'card' },
      h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      controlsFor(m, ref, ctx, () => ctx.navigate(`/machines/${encodeURIComponent(id)}`))),
    h('section', { class: 'card' },
      h('h2', {}, 'History'),
      table({ text: 'History, newest first', hidden: true }, [
        { title: 'When', cell: (e) => time(e.t ?? e.at) },
        { title: 'What', cell: (e) => opText[e.op] ?? e.op },
      ], m.history || [], 'No history kept for this machine.')));
}

// The control name of an awaiting machine: its request in the queue.
async function refFromQueue(m) {
  try {
    let cursor = '';
    for (let i = 0; i < 20; i++) {
      const page = await get(`/api/v1/approvals${query({ cursor, limit: 500 })}`);
      for (const a of page.items || []) {
        if (a.order === m.order && (await directoryId(a.order, a.machine)) === m.id) return a.id;
      }
      if (!page.next_cursor) return null;
      cursor = page.next_cursor;
    }
  } catch {
    /* no controls then */
  }
  return null;
}
