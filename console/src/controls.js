// controls.js -- the deactivation controls of a volume machine (approve,
// deny, force deactivate), shared by the machine page and the approvals
// queue. Each is a real button; a forced deactivation asks first. `ref` is
// the machine's ORDER-DIGEST name (machine_ref.js).
import { can, post } from './api.js';
import { h } from './dom.js';

const verbs = {
  approve: ['Approve deactivation', 'Deactivation approved'],
  deny: ['Deny deactivation', 'Deactivation denied'],
  deactivate: ['Force deactivate', 'Machine deactivated'],
};

export function controlButton(action, ref, name, ctx, after) {
  const [label, done] = verbs[action];
  return h('button', {
    type: 'button',
    class: action === 'approve' ? '' : 'danger',
    'aria-label': `${label}: ${name}`,
    'data-action': action,
    onclick: async (ev) => {
      const button = ev.currentTarget;
      if (action === 'deactivate' && !window.confirm(`Deactivate ${name} now? Its seat frees and its next renewal is refused.`)) return;
      button.disabled = true;
      try {
        await post(`/api/v1/machines/${encodeURIComponent(ref)}/${action}`);
        ctx.notify(`${done}: ${name}.`);
        after();
      } catch (e) {
        button.disabled = false;
        ctx.notify(`${label} failed: ${e.message}`);
      }
    },
  }, label);
}

// The buttons for a machine's state; null for a viewer or a machine whose
// control name is not known.
export function controlsFor(m, ref, ctx, after) {
  if (!can('operator') || !ref) return null;
  const name = m.hostname || m.id;
  const buttons = [];
  if (m.status === 'awaiting_approval') buttons.push(controlButton('approve', ref, name, ctx, after), controlButton('deny', ref, name, ctx, after));
  if (m.status !== 'deactivated') buttons.push(controlButton('deactivate', ref, name, ctx, after));
  return h('div', { class: 'actions' }, buttons);
}
