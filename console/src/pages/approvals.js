// approvals.js -- the deactivation requests waiting for an operator
// (GET /api/v1/approvals), each with its approve and deny buttons.
import { can, get } from '../api.js';
import { controlButton } from '../controls.js';
import { h, table } from '../dom.js';
import { query, time } from '../format.js';

export async function render(main, ctx) {
  const cursor = ctx.query.get('cursor') || '';
  const page = await get(`/api/v1/approvals${query({ cursor })}`);
  if (ctx.stale()) return;
  const rows = page.items || [];
  const again = () => ctx.navigate('/approvals');
  main.append(
    h('h1', {}, 'Approvals'),
    h('p', {}, 'Machines of orders with deactivation approval that asked to give their seat back.'),
    table({ text: 'Deactivations awaiting approval', hidden: true }, [
      { title: 'Machine', cell: (m) => h('a', { href: `#/machines/${encodeURIComponent(m.id)}` }, m.hostname || m.id) },
      { title: 'Order', cell: (m) => m.order ?? '' },
      { title: 'Asked', cell: (m) => time(m.requested_at ?? m.last_seen) },
      { title: 'Host serial', cell: (m) => m.host_serial || '' },
      ...(can('operator') ? [{ title: 'Decide', cell: (m) => h('div', { class: 'actions' }, controlButton('approve', m, ctx, again), controlButton('deny', m, ctx, again)) }] : []),
    ], rows, 'No deactivation is waiting.'),
    page.next_cursor ? h('p', {}, h('a', { class: 'button', href: `#/approvals${query({ cursor: page.next_cursor })}` }, 'Next page')) : null);
}
