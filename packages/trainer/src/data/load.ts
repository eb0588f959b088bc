/** Loading a named dataset from disk (Node only: WikiText-2 is read, or downloaded once, from files). */
import { DATASETS, type Dataset, datasetFromText, type LoadDatasetOptions, syntheticDataset } from '../presets'
import { DataError } from './errors'
import { loadWikitext, resolveWikitextDir } from './wikitext'

/**
 * Load a dataset with the paper's split: first 90% of the characters train, last 10% val. The vocabulary
 * is the sorted character set of the whole text (the paper's `sorted(set(text))`, 283 for WikiText-2).
 */
export async function loadDataset(name: string, opts: LoadDatasetOptions = {}): Promise<Dataset> {
  if (name === 'synthetic') return syntheticDataset(opts)
  if (name === 'wikitext-2') {
    const dir = await resolveWikitextDir({ dataDir: opts.dataDir, env: opts.env })
    return datasetFromText(name, (await loadWikitext(dir)).train, `${dir}/train.txt`, opts)
  }
  throw new DataError(`unknown dataset '${name}'; choose one of ${DATASETS.join(', ')}`)
}
