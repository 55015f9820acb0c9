import type { CheckpointRow } from '../../model/view-types.js';
import { withToken } from '../access-token.js';
import { byId, fill, h } from '../dom.js';
import { bytes, clock, count } from '../format.js';

/** The checkpoints on the coordinator's disk, newest first, each downloadable as a .tar.gz. */
export function renderCheckpoints(checkpoints: readonly CheckpointRow[]): void {
  byId('checkpoints-summary').textContent = checkpoints.length === 0 ? '' : `${checkpoints.length} kept`;
  if (checkpoints.length === 0) {
    fill(byId('checkpoints'), h('p', { class: 'empty' }, 'No checkpoint yet.'));
    return;
  }
  fill(
    byId('checkpoints'),
    h(
      'table',
      { class: 'checkpoints' },
      h('thead', {}, h('tr', {}, ...['saved', 'step', 'size', 'manifest sha256', ''].map((c) => h('th', {}, c)))),
      h(
        'tbody',
        {},
        ...checkpoints.map((checkpoint) =>
          h(
            'tr',
            { 'data-step': checkpoint.step },
            h('td', {}, clock(checkpoint.savedAt)),
            h('td', { class: 'num' }, count(checkpoint.step)),
            h('td', { class: 'num' }, bytes(checkpoint.bytes)),
            h('td', { class: 'mono', title: `sha256 of manifest.json, which lists the sha256 of all ${checkpoint.files} files:\n${checkpoint.manifestSha256}` }, `${checkpoint.manifestSha256.slice(0, 16)}…`),
            h('td', {}, h('a', { href: withToken(checkpoint.downloadPath), download: '' }, 'download')),
          ),
        ),
      ),
    ),
  );
}
