/**
 * Reading the Kubernetes manifests the way `kubectl apply -k` does, for the deploy tests: YAML 1.1
 * (go-yaml: `0440` is octal), several documents per file, and the two kustomization features the
 * manifests use (`resources`, `images`). A kustomization using anything else fails loudly here
 * rather than being rendered wrongly.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

export interface LoadedObject {
  file: string;
  object: K8sObject;
}

export function readYamlDocuments(file: string): unknown[] {
  return parseAllDocuments(readFileSync(file, 'utf8'), { version: '1.1' }).map((document) => {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map((error) => error.message).join('; ')}`);
    return document.toJS() as unknown;
  });
}

const KUSTOMIZATION_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'images']);

interface Kustomization {
  resources: string[];
  images?: { name: string; newName?: string; newTag?: string }[];
}

export function readKustomization(dir: string): Kustomization {
  const [document] = readYamlDocuments(path.join(dir, 'kustomization.yaml')) as [Record<string, unknown>];
  const unsupported = Object.keys(document).filter((key) => !KUSTOMIZATION_FIELDS.has(key));
  if (unsupported.length > 0) throw new Error(`${dir}/kustomization.yaml uses ${unsupported.join(', ')}: teach test/deploy-support to render it`);
  if (document.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || document.kind !== 'Kustomization') throw new Error(`${dir}/kustomization.yaml is not a Kustomization`);
  return document as unknown as Kustomization;
}

/** The objects an overlay produces, each with the file it came from, images rewritten as kustomize does. */
export function renderKustomization(dir: string): LoadedObject[] {
  const kustomization = readKustomization(dir);
  const objects = kustomization.resources.flatMap((resource) => {
    const target = path.join(dir, resource);
    if (!existsSync(target)) throw new Error(`${dir}/kustomization.yaml lists ${resource}, which does not exist`);
    if (statSync(target).isDirectory()) return renderKustomization(target);
    return readYamlDocuments(target).map((object) => ({ file: target, object: object as K8sObject }));
  });
  for (const { object } of objects) {
    for (const container of podContainers(object)) {
      const [name, tag] = container.image.split(':') as [string, string | undefined];
      const rule = kustomization.images?.find((image) => image.name === name);
      if (rule) container.image = `${rule.newName ?? name}:${rule.newTag ?? tag}`;
    }
  }
  return objects;
}

export interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: { name?: string; containerPort: number }[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  securityContext?: Record<string, unknown>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
}

export interface Probe {
  httpGet?: { path: string; port: string | number };
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}

export interface PodSpec {
  containers: Container[];
  volumes?: { name: string; configMap?: { name: string }; secret?: { secretName: string; defaultMode?: number }; persistentVolumeClaim?: { claimName: string }; emptyDir?: object }[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; runAsGroup?: number; fsGroup?: number };
  tolerations?: unknown[];
}

/** The pod template of a workload (Deployment, StatefulSet), or undefined for other kinds. */
export function podSpec(object: K8sObject): PodSpec | undefined {
  const spec = object.spec as { template?: { spec?: PodSpec } } | undefined;
  return spec?.template?.spec;
}

export function podContainers(object: K8sObject): Container[] {
  return podSpec(object)?.containers ?? [];
}
