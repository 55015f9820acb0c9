import { EventEmitter } from 'node:events';
import type { Logger } from '../../shared/log/logger.js';
import type { Link, Refused } from '../../shared/transport/index.js';
import { PEER_ROLE, type ClusterMessage, type ClusterMessageOf } from '../protocol/cluster-messages.js';
import { PeerHandle } from './peer-handle.js';

export interface RegistryEvents {
  /** A peer has loaded the job and can be given a rank. */
  prepared: [PeerHandle];
  /** A peer's link closed (or was closed by us). */
  gone: [PeerHandle, string];
  ready: [PeerHandle, ClusterMessageOf<'ready'>];
  progress: [PeerHandle, ClusterMessageOf<'progress'>];
  'epoch-ended': [PeerHandle, ClusterMessageOf<'epoch-ended'>];
  evaluating: [PeerHandle, ClusterMessageOf<'evaluating'>];
  result: [PeerHandle, ClusterMessageOf<'result'>];
  checkpoint: [PeerHandle, ClusterMessageOf<'checkpoint'>];
  'stage-report': [PeerHandle, ClusterMessageOf<'stage-report'>];
  'stage-checkpoint': [PeerHandle, ClusterMessageOf<'stage-checkpoint'>];
}

export interface RegistryOptions {
  runId: string;
  coordinatorId: string;
  /** The validated job, as sent to every peer. */
  job: Record<string, unknown>;
  log: Logger;
}

const JOIN_TIMEOUT_MS = 10_000;
const MAX_REFUSALS_REMEMBERED = 20;

/**
 * Admission: every authenticated link that says `join` gets the job; once it reports `prepared`
 * (with a state layout matching the other peers') it counts as available. Also remembers who was
 * turned away at the handshake (wrong secret, other cluster), to say so when peers are missing.
 */
export class PeerRegistry extends EventEmitter<RegistryEvents> {
  private readonly handles = new Map<string, PeerHandle>();
  private readonly refusals: Refused[] = [];
  private arrivals = 0;
  private reference: { stateLayout: string; stateElements: number; trainSamples: number; nodeId: string } | undefined;
  /** Set once the job is over: peers that still arrive are told so instead of being given the job. */
  private over: { reason: string; success: boolean } | undefined;

  constructor(private readonly options: RegistryOptions) {
    super();
  }

  /** Peers with a live link, in arrival order. */
  all(): PeerHandle[] {
    return [...this.handles.values()].filter((peer) => peer.alive).sort((a, b) => a.arrival - b.arrival);
  }

  prepared(): PeerHandle[] {
    return this.all().filter((peer) => peer.status === 'prepared');
  }

  get trainSamples(): number | undefined {
    return this.reference?.trainSamples;
  }

  accept(link: Link<ClusterMessage>): void {
    const { log } = this.options;
    if (link.peer.role !== PEER_ROLE) {
      link.close(`this is a coordinator; only peers may connect (you are a '${link.peer.role}')`);
      return;
    }
    const previous = this.handles.get(link.peer.nodeId);
    if (previous?.alive) {
      log.warn({ peer: previous.label }, 'a new connection uses the same node id: dropping the old one');
      previous.link.close('replaced by a newer connection with the same node id');
    }
    const peer = new PeerHandle(link, this.arrivals++);
    this.handles.set(peer.nodeId, peer);
    link.once('close', (info) => {
      if (this.handles.get(peer.nodeId) === peer && peer.status !== 'gone') {
        peer.status = 'gone';
        peer.problem ??= info.reason;
        this.emit('gone', peer, info.reason);
      }
    });
    for (const type of ['ready', 'progress', 'epoch-ended', 'evaluating', 'result', 'checkpoint', 'stage-report', 'stage-checkpoint'] as const) {
      link.onControl(type, (message) => (this.emit as (event: string, ...args: unknown[]) => boolean)(type, peer, message));
    }
    link.onControl('prepared', (message) => this.onPrepared(peer, message));
    link.onControl('unfit', (message) => {
      peer.status = 'unfit';
      peer.problem = message.message;
      log.error({ peer: peer.label }, `peer cannot run this job: ${message.message}`);
      void peer.send({ type: 'refuse', reason: `cannot run this job: ${message.message}`.slice(0, 1_900), retry: false }).then(() => link.close('unfit for the job'));
    });
    link
      .nextControl('join', { timeoutMs: JOIN_TIMEOUT_MS })
      .then((join) => {
        peer.hostname = join.hostname;
        peer.pid = join.pid;
        if (this.over) return peer.send({ type: 'shutdown', ...this.over });
        peer.status = 'preparing';
        log.info({ peer: peer.label }, 'peer joined; sending the job');
        return peer.send({ type: 'welcome', runId: this.options.runId, job: this.options.job, coordinatorId: this.options.coordinatorId });
      })
      .catch((error: Error) => link.close(`no join message: ${error.message}`.slice(0, 100)));
  }

  refused(refused: Refused): void {
    this.refusals.push(refused);
    if (this.refusals.length > MAX_REFUSALS_REMEMBERED) this.refusals.shift();
    this.options.log.warn({ peer: refused.peer, reason: refused.reason }, 'refused a connection');
  }

  /** Who is here and who was turned away, for "waiting for peers" messages. */
  describe(): string {
    const parts: string[] = [];
    const byStatus = (status: string) => this.all().filter((peer) => peer.status === status);
    const list = (peers: PeerHandle[]) => peers.map((peer) => peer.label).join(', ');
    const prepared = byStatus('prepared');
    parts.push(prepared.length > 0 ? `ready: ${list(prepared)}` : 'no peer ready');
    const preparing = [...byStatus('preparing'), ...byStatus('joining')];
    if (preparing.length > 0) parts.push(`still loading the job: ${list(preparing)}`);
    const unfit = [...this.handles.values()].filter((peer) => peer.status === 'unfit' || (peer.status === 'gone' && peer.problem));
    if (unfit.length > 0) parts.push(`left or unfit: ${unfit.map((peer) => `${peer.label} (${peer.problem})`).join('; ')}`);
    if (this.refusals.length > 0) parts.push(`refused at the handshake: ${this.refusals.map((r) => (r.reason.includes(r.peer) ? r.reason : `${r.peer}: ${r.reason}`)).join('; ')}`);
    return parts.join('; ');
  }

  /** Tells every peer the job is over. */
  async shutdownAll(reason: string, success: boolean): Promise<void> {
    this.over = { reason, success };
    await Promise.all(this.all().map((peer) => peer.send({ type: 'shutdown', reason, success })));
  }

  private onPrepared(peer: PeerHandle, message: ClusterMessageOf<'prepared'>): void {
    const { log, runId } = this.options;
    if (message.runId !== runId) return;
    const reference = this.reference;
    if (reference && (reference.stateLayout !== message.stateLayout || reference.stateElements !== message.stateElements || reference.trainSamples !== message.trainSamples)) {
      const reason =
        `its model/optimizer/data differ from ${reference.nodeId}'s (state layout ${message.stateLayout.slice(0, 8)} with ${message.stateElements} values and ${message.trainSamples} samples, ` +
        `expected ${reference.stateLayout.slice(0, 8)} with ${reference.stateElements} values and ${reference.trainSamples} samples): give every machine the same model file and dataset`;
      peer.status = 'unfit';
      peer.problem = reason;
      log.error({ peer: peer.label }, `refusing peer: ${reason}`);
      void peer.send({ type: 'refuse', reason, retry: false }).then(() => peer.link.close('unfit for the job'));
      return;
    }
    this.reference ??= { stateLayout: message.stateLayout, stateElements: message.stateElements, trainSamples: message.trainSamples, nodeId: peer.nodeId };
    const { type: _type, ...prepared } = message;
    peer.prepared = prepared;
    peer.status = 'prepared';
    log.info({ peer: peer.label, backend: message.backend }, 'peer ready for the job');
    this.emit('prepared', peer);
  }
}
