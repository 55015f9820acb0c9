/**
 * The Kubernetes manifests (deploy/kubernetes/): every object against the Kubernetes JSON schemas
 * (kubernetes-models) and against unknown fields (OpenAPI field lists), then what no schema can
 * see: that the pieces fit each other and the programs — names that resolve, ports and probe paths
 * the processes really serve, environment variables the commands really read, a job the
 * coordinator accepts, the image's user.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { describe, expect, it } from 'vitest';
import { parseClusterJob } from '../coordinator/job/cluster-job.js';
import { applyEnvFallbacks, COORDINATOR_ENV_FLAGS, OTHER_ENV, PEER_ENV_FLAGS, type EnvFlag } from '../shared/config/index.js';
import { LIVENESS_PATH, READINESS_PATH } from '../shared/health/index.js';
import { podContainers, podSpec, readYamlDocuments, renderKustomization, type Container, type K8sObject, type LoadedObject } from './deploy-support/kubernetes-objects.js';
import { unknownFields } from './deploy-support/strict-fields.js';

const ROOT = path.join(import.meta.dirname, '..');
const KUBERNETES = path.join(ROOT, 'deploy', 'kubernetes');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

type Validatable = new (data: never) => { validate(): void };
const SCHEMAS: Record<string, Validatable> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

function manifestFiles(dir = KUBERNETES): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return manifestFiles(file);
    return /\.ya?ml$/.test(entry.name) && entry.name !== 'kustomization.yaml' ? [file] : [];
  });
}

/** Schema errors and unknown fields of one object, as readable lines (empty when valid). */
function problems(object: K8sObject): string[] {
  const schema = SCHEMAS[`${object.apiVersion}/${object.kind}`];
  if (!schema) return [`no schema for ${object.apiVersion} ${object.kind}: add it to the test`];
  const found: string[] = [];
  try {
    new schema(object as never).validate();
  } catch (error) {
    found.push(`schema: ${(error as Error).message}`);
  }
  const typeName = `${object.apiVersion.split('/').pop()!.toUpperCase()}${object.kind}`;
  found.push(...unknownFields(object, typeName).map((field) => `unknown field ${field.slice(1)}`));
  return found;
}

const rendered = { cpu: renderKustomization(path.join(KUBERNETES, 'cpu')), gpu: renderKustomization(path.join(KUBERNETES, 'gpu')) };
const example = readYamlDocuments(path.join(KUBERNETES, 'secret.example.yaml')) as K8sObject[];

function only(objects: LoadedObject[], kind: string, name?: string): K8sObject {
  const matches = objects.filter(({ object }) => object.kind === kind && (name === undefined || object.metadata.name === name));
  expect(matches.map(({ object }) => object.metadata.name), `${kind} ${name ?? ''}`).toHaveLength(1);
  return matches[0]!.object;
}

function container(workload: K8sObject): Container {
  const containers = podContainers(workload);
  expect(containers, `${workload.metadata.name}: one container`).toHaveLength(1);
  return containers[0]!;
}

function envOf(item: Container): Record<string, string> {
  return Object.fromEntries((item.env ?? []).filter((entry) => entry.value !== undefined).map((entry) => [entry.name, entry.value!]));
}

function selectorMatches(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}

describe('Kubernetes manifests: schema', () => {
  const files = manifestFiles();

  it('finds the manifests', () => {
    expect(files.map((file) => path.relative(KUBERNETES, file)).sort()).toEqual([
      'base/checkpoints-pvc.yaml',
      'base/coordinator-deployment.yaml',
      'base/coordinator-service.yaml',
      'base/job-configmap.yaml',
      'base/peers-pdb.yaml',
      'base/peers-service.yaml',
      'cpu/peers-statefulset.yaml',
      'gpu/peers-statefulset.yaml',
      'secret.example.yaml',
    ]);
  });

  it.each(manifestFiles().map((file) => [path.relative(KUBERNETES, file), file]))('%s is valid against the Kubernetes schemas, with no unknown field', (_, file) => {
    const objects = readYamlDocuments(file) as K8sObject[];
    expect(objects.length).toBeGreaterThan(0);
    for (const object of objects) expect(problems(object), `${object.kind} ${object.metadata?.name}`).toEqual([]);
  });

  it('every manifest is applied by an overlay (the example secret is created by hand)', () => {
    const used = new Set([...rendered.cpu, ...rendered.gpu].map(({ file }) => file));
    expect(files.filter((file) => !used.has(file)).map((file) => path.relative(KUBERNETES, file))).toEqual(['secret.example.yaml']);
  });

  it('the validators do reject broken objects (so the checks above can fail)', () => {
    const peers = structuredClone(only(rendered.cpu, 'StatefulSet'));
    const item = podContainers(peers)[0] as unknown as Record<string, unknown>;
    item.readinessprobe = item.readinessProbe;
    delete item.readinessProbe;
    (item.ports as { containerPort: unknown }[])[0]!.containerPort = 'eight thousand';
    const found = problems(peers);
    expect(found.some((line) => /schema: .*containerPort must be integer/.test(line)), found.join('\n')).toBe(true);
    expect(found).toContain('unknown field spec.template.spec.containers[0].readinessprobe');
    const service = structuredClone(only(rendered.cpu, 'Service', 'ringpipe-coordinator')) as K8sObject & { spec: Record<string, unknown> };
    delete (service.spec.ports as Record<string, unknown>[])[0]!.port;
    expect(problems(service).join('\n')).toMatch(/spec\/ports\/0 must have required property '?port'?/);
  });
});

describe('Kubernetes manifests: the pieces fit together', () => {
  describe.each(['cpu', 'gpu'] as const)('the %s overlay', (overlay) => {
    const objects = rendered[overlay];
    const coordinator = only(objects, 'Deployment', 'ringpipe-coordinator');
    const peers = only(objects, 'StatefulSet', 'ringpipe-peer');
    const coordinatorContainer = container(coordinator);
    const peerContainer = container(peers);
    const coordinatorEnv = envOf(coordinatorContainer);
    const peerEnv = envOf(peerContainer);

    it('one coordinator, replaced rather than rolled (one job, a ReadWriteOnce volume)', () => {
      expect(coordinator.spec).toMatchObject({ replicas: 1, strategy: { type: 'Recreate' } });
      expect(coordinatorContainer.args).toEqual(['coordinator']);
      expect(peerContainer.args).toEqual(['peer']);
    });

    it("peers dial the coordinator's Service, which selects the coordinator pod and targets its listening port", () => {
      const [host, port] = peerEnv.RINGPIPE_COORDINATOR!.split(':') as [string, string];
      const service = only(objects, 'Service', host) as K8sObject & { spec: { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[]; clusterIP?: string } };
      expect(service.spec.clusterIP).toBeUndefined();
      expect(selectorMatches(service.spec.selector, (coordinator.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels)).toBe(true);
      expect(selectorMatches(service.spec.selector, (peers.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels)).toBe(false);
      const servicePort = service.spec.ports.find((entry) => entry.port === Number(port));
      expect(servicePort, `Service ${host} has port ${port}`).toBeDefined();
      const target = coordinatorContainer.ports!.find((entry) => entry.name === servicePort!.targetPort || entry.containerPort === servicePort!.targetPort);
      expect(target?.containerPort).toBe(Number(coordinatorEnv.RINGPIPE_PORT));
    });

    it('the StatefulSet has its headless Service, starts peers in parallel and names each by its pod', () => {
      const spec = peers.spec as { serviceName: string; podManagementPolicy: string; replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } };
      const governing = only(objects, 'Service', spec.serviceName) as K8sObject & { spec: { clusterIP: string; selector: Record<string, string> } };
      expect(governing.spec.clusterIP).toBe('None');
      expect(selectorMatches(governing.spec.selector, spec.template.metadata.labels)).toBe(true);
      expect(selectorMatches(spec.selector.matchLabels, spec.template.metadata.labels)).toBe(true);
      expect(spec.podManagementPolicy).toBe('Parallel');
      expect(peerContainer.env!.find((entry) => entry.name === 'RINGPIPE_NODE_ID')?.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
      const budget = only(objects, 'PodDisruptionBudget') as K8sObject & { spec: { selector: { matchLabels: Record<string, string> } } };
      expect(selectorMatches(budget.spec.selector.matchLabels, spec.template.metadata.labels)).toBe(true);
    });

    it('every RINGPIPE_* variable is one the command reads, with a value it accepts', () => {
      const check = (item: Container, table: readonly EnvFlag[]) => {
        const known = new Set([...table.map((entry) => entry.env), ...OTHER_ENV.map((entry) => entry.env)]);
        const names = (item.env ?? []).map((entry) => entry.name);
        expect(names.filter((name) => !known.has(name)), `${item.name}: variables no command reads`).toEqual([]);
        // Throws, naming the variable, on a value the command would refuse.
        applyEnvFallbacks({}, table, envOf(item));
      };
      check(coordinatorContainer, COORDINATOR_ENV_FLAGS);
      check(peerContainer, PEER_ENV_FLAGS);
      for (const env of [coordinatorEnv, peerEnv]) expect(env).toMatchObject({ RINGPIPE_MDNS: '0', RINGPIPE_CLUSTER: coordinatorEnv.RINGPIPE_CLUSTER, RINGPIPE_KEEP_RUNNING: '1' });
      expect(coordinatorEnv.RINGPIPE_HOST).toBe('0.0.0.0');
    });

    it('probes ask the port the process serves them on: /healthz for liveness and start-up, /readyz for readiness', () => {
      // The coordinator's are on its dashboard's port, which must listen beyond loopback for the kubelet;
      // a peer's on a port of their own.
      expect(coordinatorEnv.RINGPIPE_HEALTH_PORT).toBeUndefined();
      expect(coordinatorEnv.RINGPIPE_DASHBOARD_HOST).toBe('0.0.0.0');
      const servedOn = [[coordinatorContainer, 'dashboard', coordinatorEnv.RINGPIPE_DASHBOARD_PORT], [peerContainer, 'health', peerEnv.RINGPIPE_HEALTH_PORT]] as const;
      for (const [item, portName, port] of servedOn) {
        expect(item.ports!.find((entry) => entry.name === portName)?.containerPort, item.name).toBe(Number(port));
        for (const [probe, expected] of [[item.livenessProbe, LIVENESS_PATH], [item.startupProbe, LIVENESS_PATH], [item.readinessProbe, READINESS_PATH]] as const) {
          expect(probe?.httpGet, item.name).toEqual({ path: expected, port: portName });
        }
        // A restart needs a minute of silence: longer than any synchronous step should block the loop.
        const live = item.livenessProbe!;
        expect((live.periodSeconds ?? 10) * (live.failureThreshold ?? 3)).toBeGreaterThanOrEqual(60);
      }
    });

    it('the job the coordinator mounts is a valid cluster job, sized for the StatefulSet', () => {
      const jobPath = coordinatorEnv.RINGPIPE_JOB!;
      const mount = coordinatorContainer.volumeMounts!.find((entry) => jobPath.startsWith(`${entry.mountPath}/`))!;
      const volume = podSpec(coordinator)!.volumes!.find((entry) => entry.name === mount.name)!;
      const configMap = only(objects, 'ConfigMap', volume.configMap!.name) as K8sObject & { data: Record<string, string> };
      const text = configMap.data[path.basename(jobPath)];
      expect(text, `${volume.configMap!.name} has ${path.basename(jobPath)}`).toBeDefined();
      const job = parseClusterJob(JSON.parse(text!), 'the job in the ConfigMap');
      const replicas = (peers.spec as { replicas: number }).replicas;
      expect(job.peers.min).toBeLessThanOrEqual(replicas);
      expect(job.peers.max).toBeGreaterThanOrEqual(replicas);
      // Kubernetes needs time to reschedule a pod (and pull its image): the job must wait for it.
      expect(job.peers.waitSeconds).toBeGreaterThanOrEqual(300);
      expect(Number(peerEnv.RINGPIPE_RECONNECT_TIMEOUT)).toBeGreaterThanOrEqual(300);
    });

    it('the secret file both read is the mounted Secret, readable by the image user; the example secret has that name', () => {
      const secretName = example[0]!.metadata.name;
      for (const workload of [coordinator, peers]) {
        const item = container(workload);
        const file = envOf(item).RINGPIPE_SECRET_FILE!;
        const mount = item.volumeMounts!.find((entry) => file.startsWith(`${entry.mountPath}/`))!;
        expect(mount.readOnly).toBe(true);
        const volume = podSpec(workload)!.volumes!.find((entry) => entry.name === mount.name)!;
        expect(volume.secret).toEqual({ secretName, defaultMode: 0o440 });
        expect((example[0] as K8sObject & { stringData: Record<string, string> }).stringData).toHaveProperty(path.basename(file));
        expect(podSpec(workload)!.securityContext!.fsGroup).toBe(1000);
      }
    });

    it('checkpoints land on the PersistentVolumeClaim: mounted where the image keeps its run folders', () => {
      const mount = coordinatorContainer.volumeMounts!.find((entry) => entry.mountPath === '/app/runs');
      expect(mount).toBeDefined();
      const claim = podSpec(coordinator)!.volumes!.find((entry) => entry.name === mount!.name)!.persistentVolumeClaim!.claimName;
      expect(only(objects, 'PersistentVolumeClaim', claim).spec).toMatchObject({ accessModes: ['ReadWriteOnce'] });
      expect(coordinatorEnv.RINGPIPE_RUN_DIR).toBeUndefined();
    });

    it('pods run as the image user (1000, not root) with a read-only root file system and a writable /tmp', () => {
      for (const workload of [coordinator, peers]) {
        const spec = podSpec(workload)!;
        expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000 });
        const item = container(workload);
        expect(item.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
        const tmp = item.volumeMounts!.find((entry) => entry.mountPath === '/tmp')!;
        expect(spec.volumes!.find((entry) => entry.name === tmp.name)!.emptyDir).toBeDefined();
      }
    });

    it(overlay === 'gpu' ? 'peers run the GPU image on one NVIDIA GPU each, with exactly the GPU backend' : 'peers run the CPU image and ask for no GPU', () => {
      expect(coordinatorContainer.image).toBe(`ringpipe:${VERSION}`);
      if (overlay === 'gpu') {
        expect(peerContainer.image).toBe(`ringpipe-gpu:${VERSION}`);
        expect(peerContainer.resources!.limits!['nvidia.com/gpu']).toBe(1);
        expect(peerEnv.RINGPIPE_BACKEND).toBe('node-gpu');
      } else {
        expect(peerContainer.image).toBe(`ringpipe:${VERSION}`);
        expect(JSON.stringify(peers)).not.toMatch(/nvidia/);
        expect(peerEnv.RINGPIPE_BACKEND).toBeUndefined();
      }
    });
  });

  it('the GPU StatefulSet differs from the CPU one only in image, backend, GPU request and toleration', () => {
    const strip = (workload: K8sObject) => {
      const copy = structuredClone(workload) as K8sObject & { spec: { template: { spec: Record<string, unknown> } } };
      delete copy.spec.template.spec.tolerations;
      const item = podContainers(copy)[0]!;
      item.image = item.image.replace('ringpipe-gpu:', 'ringpipe:');
      item.env = item.env!.filter((entry) => entry.name !== 'RINGPIPE_BACKEND');
      delete item.resources!.limits!['nvidia.com/gpu'];
      return copy;
    };
    expect(strip(only(rendered.gpu, 'StatefulSet'))).toEqual(only(rendered.cpu, 'StatefulSet'));
    expect(podSpec(only(rendered.gpu, 'StatefulSet'))!.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
  });

  it('the images are the ones the Dockerfile builds, tagged with the package version', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM \S+ AS cpu$/m);
    expect(dockerfile).toMatch(/^FROM \S+ AS gpu$/m);
    const images = new Set([...rendered.cpu, ...rendered.gpu].flatMap(({ object }) => podContainers(object).map((item) => item.image)));
    expect([...images].sort()).toEqual([`ringpipe-gpu:${VERSION}`, `ringpipe:${VERSION}`]);
  });
});
