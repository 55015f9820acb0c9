import type { DashboardView, PeerRow } from '../../model/view-types.js';
import { byId, fill, h } from '../dom.js';
import { ago, bytes, count, DASH } from '../format.js';

const COLUMNS = ['peer', 'host', 'backend', 'role', 'status', 'step', 'steps/s', 'last heartbeat', 'memory'];

/** Every peer the coordinator has seen: the live ones, then the dead (with why and when). */
export function renderPeers(view: DashboardView): void {
  const alive = view.peers.filter((peer) => peer.status !== 'dead' && peer.status !== 'left').length;
  byId('peers-summary').textContent = `${alive} connected${view.peers.length > alive ? `, ${view.peers.length - alive} gone` : ''}`;
  const table = h(
    'table',
    { class: 'peers' },
    h('thead', {}, h('tr', {}, ...COLUMNS.map((column) => h('th', {}, column)))),
    h('tbody', {}, ...view.peers.map((peer) => row(peer, view.serverTime))),
  );
  if (view.peers.length === 0) fill(byId('peers'), h('p', { class: 'empty' }, 'No peer has joined yet. Start one with npm run peer.'));
  else fill(byId('peers'), table);
}

function row(peer: PeerRow, now: number): HTMLTableRowElement {
  const gone = peer.status === 'dead' || peer.status === 'left';
  const statusText = gone ? `${peer.status} ${ago(peer.since, now)}` : peer.status;
  return h(
    'tr',
    { 'data-node-id': peer.nodeId, 'data-status': peer.status, class: gone ? 'gone' : '' },
    h('td', { class: 'mono' }, peer.nodeId, h('div', { class: 'muted small' }, peer.address || DASH)),
    h('td', {}, peer.hostname || DASH),
    h('td', {}, peer.backend ?? DASH),
    h('td', {}, peer.role),
    h('td', {}, h('span', { class: `badge status-${peer.status}`, title: peer.detail ?? '' }, statusText), peer.detail ? h('div', { class: 'muted small detail' }, peer.detail) : null),
    h('td', { class: 'num' }, count(peer.step)),
    h('td', { class: 'num' }, count(peer.stepsPerSecond, 2)),
    h('td', { class: 'num' }, gone ? DASH : ago(peer.lastHeartbeat, now)),
    h('td', { class: 'num' }, bytes(peer.memoryBytes)),
  );
}
