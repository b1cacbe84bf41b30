// approvals.js -- the deactivation requests waiting for an operator
// (GET /api/v1/approvals), each with its approve and deny buttons and,
// where the machine directory knows it, the machine's hostname and page.
import { can, get } from '../api.js';
import { controlButton } from '../controls.js';
import { append, h, table } from '../dom.js';
import { query, time } from '../format.js';
import { directoryId } from '../machine_ref.js';

export async function render(main, ctx) {
  const cursor = ctx.query.get('cursor') || '';
  const page = await get(`/api/v1/approvals${query({ cursor })}`);
  const rows = await Promise.all((page.items || []).map(withDirectory));
  if (ctx.stale()) return;
  const again = () => ctx.navigate('/approvals');
  append(main, 
    h('h1', {}, 'Approvals'),
    h('p', {}, 'Machines of orders with deactivation approval that asked to give their seat back.'),
    table({ text: 'Deactivations awaiting approval', hidden: true }, [
      { title: 'Machine', cell: (a) => (a.dir ? h('a', { href: `#/machines/${encodeURIComponent(a.dir.id)}` }, a.dir.hostname || a.machine) : h('code', {}, a.machine)) },
      { title: 'Order', cell: (a) => h('a', { href: `#/orders/${encodeURIComponent(a.order)}` }, a.order) },
      { title: 'Customer', cell: (a) => a.customer ?? '' },
      { title: 'First seen', cell: (a) => time(a.first_seen) },
      { title: 'Last contact', cell: (a) => time(a.last_seen) },
      ...(can('operator') ? [{
        title: 'Decide',
        cell: (a) => {
          const name = a.dir?.hostname || a.machine;
          return h('div', { class: 'actions' }, controlButton('approve', a.id, name, ctx, again), controlButton('deny', a.id, name, ctx, again));
        },
      }] : []),
    ], rows, 'No deactivation is waiting.'),
    page.next_cursor ? h('p', {}, h('a', { class: 'button', href: `#/approvals${query({ cursor: page.next_cursor })}` }, 'Next page')) : null);
}

// The directory's record of a request's machine, when it has one.
async function withDirectory(a) {
  try {
    return { ...a, dir: await get(`/api/v1/machines/${encodeURIComponent(await directoryId(a.order, a.machine))}`) };
  } catch {
    return { ...a, dir: null };
  }
}
