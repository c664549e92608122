/**
 * Reading a JSON file a user handed codiemb (a model's config.json, modules.json, a shard index, …):
 * one place for the read-and-parse step, so every such file fails the same way, with an error of
 * the caller's own class naming the file.
 */
import {readFileSync} from 'node:fs'

/**
 * Parses the JSON file at `path`. When it cannot be read or is not valid JSON, throws
 * `invalid(reason)`, where `reason` is the reader's or parser's own message; the caller's error
 * names the file and what it expected there.
 */
export function readJsonFile(path: string, invalid: (reason: string) => Error): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw invalid((error as Error).message)
  }
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    throw invalid((error as Error).message)
  }
}
