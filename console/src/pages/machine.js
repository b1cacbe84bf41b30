// machine.js -- one machine: its facts, its history from the machine log,
// and the deactivation controls of a volume machine.
import { get } from '../api.js';
import { controlsFor } from '../controls.js';
import { append, h, table } from '../dom.js';
import { statusText, time } from '../format.js';
import { controlRef } from '../machine_ref.js';

const opText = {
  activate: 'activated', renew: 'renewed', deactivate: 'deactivated', reclaimed: 'expired or reclaimed',
  pending: 'pending', deactivation_requested: 'deactivation requested',
  rebound: 'place re-bound here (components matched)', moved: 'place moved to another machine id',
};

export async function render(main, ctx) {
  const id = ctx.params.id;
  const m = await get(`/api/v1/machines/${encodeURIComponent(id)}`);
  const ref = controlRef(m);
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
