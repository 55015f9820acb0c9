import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { DataError } from '../pipeline/data-error.js';
import type { DataSource } from '../pipeline/source.js';

/** A not-yet-read image file; `decodeImage` reads and decodes it (in a worker thread when parallel). */
export interface ImageFileRef {
  file: string;
  label: number;
}

export interface ImageFolderSource extends DataSource<ImageFileRef> {
  /** Class names (the sub-folder names, sorted); a label is an index into this list. */
  readonly classes: readonly string[];
}

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'];

/**
 * `root/<class name>/<image>.png|jpg`: one sub-folder per class, its name giving the label.
 * Files are listed in sorted order so every peer sees the same indices. Other files are ignored.
 */
export async function imageFolderSource(root: string): Promise<ImageFolderSource> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (err) {
    throw new DataError(`${root}: cannot read the image folder (${(err as NodeJS.ErrnoException).code ?? String(err)}). Give a folder with one sub-folder of images per class.`);
  }
  const classes = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  if (classes.length === 0) throw new DataError(`${root}: no class sub-folders found. Put the images of each class in their own sub-folder, e.g. ${path.join(root, 'cat', '0001.png')}.`);
  const refs: ImageFileRef[] = [];
  for (const [label, name] of classes.entries()) {
    const files = (await readdir(path.join(root, name), { withFileTypes: true }))
      .filter((e) => e.isFile() && IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase()))
      .map((e) => e.name)
      .sort();
    for (const file of files) refs.push({ file: path.join(root, name, file), label });
  }
  if (refs.length === 0) throw new DataError(`${root}: the class folders (${classes.join(', ')}) hold no ${IMAGE_EXTENSIONS.join('/')} files.`);
  return {
    name: `image-folder:${path.resolve(root)}`,
    size: refs.length,
    classes,
    skipped: [],
    read: (index) => ({ ...refs[index]! }),
  };
}
