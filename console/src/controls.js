// controls.js -- the deactivation controls of a volume machine (approve,
// deny, force deactivate), shared by the machine page and the approvals
// queue. Each is a real button; a forced deactivation asks first.
import { can, post } from './api.js';
import { h } from './dom.js';

const verbs = {
  approve: ['Approve deactivation', 'Deactivation approved'],
  deny: ['Deny deactivation', 'Deactivation denied'],
  deactivate: ['Force deactivate', 'Machine deactivated'],
};

export function controlButton(action, m, ctx, after) {
  const [label, done] = verbs[action];
  const name = m.hostname || m.id;
  return h('button', {
    type: 'button',
    class: action === 'approve' ? '' : 'danger',
    'aria-label': `${label}: ${name}`,
    'data-action': action,
    onclick: async (ev) => {
      if (action === 'deactivate' && !window.confirm(`Deactivate ${name} now? Its seat frees and its next renewal is refused.`)) return;
      ev.currentTarget.disabled = true;
      try {
        await post(`/api/v1/machines/${encodeURIComponent(m.id)}/${action}`);
        ctx.notify(`${done}: ${name}.`);
        after();
      } catch (e) {
        ev.currentTarget.disabled = false;
        ctx.notify(`${label} failed: ${e.message}`);
      }
    },
  }, label);
}

export function controlsFor(m, ctx, after) {
  if (!can('operator')) return null;
  const buttons = [];
  if (m.status === 'awaiting_approval') buttons.push(controlButton('approve', m, ctx, after), controlButton('deny', m, ctx, after));
  if (m.order && m.status !== 'deactivated') buttons.push(controlButton('deactivate', m, ctx, after));
  return buttons.length ? h('div', { class: 'actions' }, buttons) : null;
}
