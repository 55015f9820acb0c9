import type { CapacityPlan } from './plan-capacity.js';
import { formatBandwidth, formatBytes, formatCount, formatMs } from './units.js';

function table(header: string[], rows: string[][], leftColumns = 2): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}`;
  return [line(header), ...rows.map(line)].join('\n');
}

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

/** The plan as text for a terminal: the model, the cluster, the predictions, the recommendation. */
export function formatPlan(plan: CapacityPlan): string {
  const m = plan.model;
  const out: string[] = [];
  out.push(`model ${m.model}: ${m.parameters.toLocaleString('en-US')} parameters (${m.trainableParameters.toLocaleString('en-US')} trainable), optimizer ${m.optimizer}, batch ${m.batchSize}`);
  out.push(`  weights ${formatBytes(m.weightsBytes)} + gradients ${formatBytes(m.gradientsBytes)} + optimizer state ${formatBytes(m.optimizerStateBytes)} = ${formatBytes(m.weightsBytes + m.gradientsBytes + m.optimizerStateBytes)}; runtime ${formatBytes(m.runtimeBytes)}`);
  out.push(`  activations kept for backward: ${formatBytes(m.activationBytesPerSample)} per sample (${formatBytes(m.activationBytesPerSample * m.batchSize)} per batch)`);
  out.push(`  FLOPs per sample: forward ${formatCount(m.flopsPerSample.forward)}, backward ${formatCount(m.flopsPerSample.backward)}${m.flopsPerSample.complete ? '' : ' (some layers not counted: —)'}`);
  out.push(
    `  on this machine (${m.backend}, ${m.cores} cores, load average ${m.loadAverage.toFixed(1)}, this process got ${m.coreShare.toFixed(2)} of a core): ` +
      `${formatMs(m.stepMs)} per step = ${(m.msPerSample * 1000).toFixed(0)} µs per sample (${m.samplesPerSecond.toFixed(0)} samples/s); on an idle core ≈ ${(m.idleCoreMsPerSample * 1000).toFixed(0)} µs per sample`,
  );
  out.push('');
  out.push(
    table(
      ['#', 'layer', 'params', 'out/sample', 'act/sample', 'fwd FLOPs', 'bwd FLOPs', `fwd ms@${m.batchSize}`, `fwd+bwd ms@${m.batchSize}`],
      m.layers.map((l) => [
        String(l.index),
        `${l.name} (${l.className})`,
        l.parameters.toLocaleString('en-US'),
        formatBytes(l.outputBytesPerSample),
        formatBytes(l.activationBytesPerSample),
        l.forwardFlopsPerSample === undefined ? '—' : formatCount(l.forwardFlopsPerSample),
        l.backwardFlopsPerSample === undefined ? '—' : formatCount(l.backwardFlopsPerSample),
        l.forwardMs.toFixed(2),
        l.forwardBackwardMs.toFixed(2),
      ]),
    ),
  );

  if (plan.cluster) {
    const c = plan.cluster;
    out.push('');
    out.push(`cluster: ${c.source}`);
    out.push(
      table(
        ['peer', 'host', 'memory', 'speed', 'link'],
        c.peers.map((p) => [p.name, p.host, formatBytes(p.memoryBytes), `${p.speed}×`, formatBandwidth(p.linkBytesPerSecond)]),
      ),
    );
    for (const [name, host] of Object.entries(c.hosts)) {
      const measured = host.measuredSharePerPeer;
      if (measured) {
        const jitter = host.measuredJitterMs ?? [];
        out.push(
          `  host ${name} (measured): each busy peer computes at ${measured.map((share, k) => `${share.toFixed(2)} of a core with ${k + 1} busy`).join(', ')}; ` +
            `jitter κ ${jitter.map((k) => `${k.toFixed(1)} ms`).join(', ')}`,
        );
      } else if (host.competing > 0 || host.peersShareGroup) {
        out.push(`  host ${name}: ${host.cores} cores, other work ≈ ${host.competing.toFixed(1)} busy threads${host.peersShareGroup ? ', peers in one scheduling group' : ''}`);
      }
    }
    if (c.loopback) out.push(`  between peers of this machine (measured on loopback): ${formatBandwidth(c.loopback.bytesPerSecond)}, ${formatMs(c.loopback.latencyMs)} per message between busy processes`);
  }

  const dp = plan.dataParallel;
  if (dp) {
    out.push('');
    out.push(`data parallel, ${dp.replicas} replica${dp.replicas === 1 ? '' : 's'}: ${dp.fits ? 'fits' : 'does NOT fit'}; step ${formatMs(dp.stepMs)} (${dp.samplesPerSecond.toFixed(0)} samples/s), efficiency ${pct(dp.efficiency)}; one peer alone ${formatMs(dp.singlePeer.stepMs)}`);
    out.push(`  ring all-reduce of ${formatBytes(dp.allReduce.bytes)}: ${formatMs(dp.allReduce.ms)} at ${formatBandwidth(dp.allReduce.bytesPerSecond)}`);
    out.push(
      table(
        ['peer', 'batch', 'cores', 'compute', 'update', 'memory needed', 'has'],
        dp.peers.map((p) => [p.name, String(p.localBatch), p.coreShare.toFixed(2), formatMs(p.computeMs), formatMs(p.updateMs), formatBytes(p.memory.totalBytes), `${formatBytes(p.memoryBytes)}${p.fits ? '' : ' ✗'}`]),
        1,
      ),
    );
  }

  for (const p of plan.pipelines) {
    out.push('');
    out.push(
      `pipeline, ${p.stages} stages [${p.balance.join(', ')}], M = ${p.microBatches}, ${p.schedule}${p.rematerialize ? ' + re-materialisation' : ''}: step ${formatMs(p.stepMs)} (${p.samplesPerSecond.toFixed(0)} samples/s), ` +
        `bubble ${pct(p.bubbleTheory)} in theory, ${pct(p.bubblePredicted)} simulated`,
    );
    out.push(
      table(
        ['stage', 'peer', 'layers', 'params', 'fwd/micro', 'bwd/micro', 'sends/micro', 'memory needed', 'has'],
        p.stagePlans.map((s) => [
          String(s.index),
          s.peer,
          `${s.layers.from}–${s.layers.to - 1}`,
          s.parameters.toLocaleString('en-US'),
          formatMs(s.forwardMs),
          formatMs(s.backwardMs),
          formatBytes(s.sendBytes),
          formatBytes(s.memory.totalBytes),
          `${formatBytes(s.memoryBytes)}${s.fits ? '' : ' ✗'}`,
        ]),
      ),
    );
    out.push(`  by micro-batches: ${p.byMicroBatches.map((b) => `M=${b.microBatches}: ${formatMs(b.stepMs)} (bubble ${pct(b.bubbleTheory)})`).join(', ')}`);
  }

  const r = plan.recommendation;
  out.push('');
  out.push(`recommendation: ${r.summary}`);
  for (const reason of r.reasons) out.push(`  - ${reason}`);
  for (const warning of r.warnings) out.push(`  ! ${warning}`);
  out.push('');
  out.push('assumptions:');
  for (const a of plan.assumptions) out.push(`  - ${a}`);
  return out.join('\n');
}

