/**
 * Unknown-field check for Kubernetes objects. The JSON schemas (kubernetes-models) check types,
 * required fields and formats but accept any extra key, as the OpenAPI schema does; `kubectl
 * apply` (server-side strict field validation) refuses them, and a misspelt `readinessProbe` would
 * otherwise silently drop the probe. The field names come from the OpenAPI-generated models of
 * @kubernetes/client-node (attributeTypeMap per type).
 */
import * as models from '@kubernetes/client-node/dist/gen/models/all.js';

interface Attribute {
  baseName: string;
  type: string;
}

type ModelClass = { getAttributeTypeMap(): Attribute[] };

const MODELS = models as unknown as Record<string, ModelClass | undefined>;
const LEAVES = new Set(['string', 'number', 'boolean', 'Date', 'any', 'object', 'IntOrString', 'V1MicroTime']);
const MAP_TYPE = /^\{ \[key: string\]: (.+); \}$/;

/** The paths of every field `value` has that type `typeName` (e.g. 'V1StatefulSet') does not define. */
export function unknownFields(value: unknown, typeName: string, at = ''): string[] {
  if (LEAVES.has(typeName) || value === null || value === undefined) return [];
  if (typeName.startsWith('Array<')) {
    const item = typeName.slice('Array<'.length, -1);
    return Array.isArray(value) ? value.flatMap((element, i) => unknownFields(element, item, `${at}[${i}]`)) : [];
  }
  const map = MAP_TYPE.exec(typeName);
  if (map) return typeof value === 'object' ? Object.entries(value).flatMap(([key, element]) => unknownFields(element, map[1]!, `${at}.${key}`)) : [];
  const model = MODELS[typeName];
  if (!model) throw new Error(`no OpenAPI model named ${typeName} (at ${at || 'top level'})`);
  if (typeof value !== 'object' || Array.isArray(value)) return [];
  const attributes = model.getAttributeTypeMap();
  return Object.entries(value).flatMap(([key, element]) => {
    const attribute = attributes.find((candidate) => candidate.baseName === key);
    return attribute ? unknownFields(element, attribute.type, `${at}.${key}`) : [`${at}.${key}`];
  });
}
