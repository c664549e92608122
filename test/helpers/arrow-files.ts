/**
 * Arrow files the way other tools (or earlier codiemb versions) write them, for tests of what the
 * readers accept: any columns and metadata, and layout-conforming files without codiemb's checksums.
 */
import {writeFileSync} from 'node:fs'
import {RecordBatchFileWriter, Schema, Table, tableToIPC, vectorFromArray, type DataType} from 'apache-arrow'
import {recordFields, rowsToBatch, type RecordKind, type RecordOfKind} from '../../src/io/arrow-records.js'

/** Writes an Arrow IPC file with the given columns (values with their Arrow type) and schema metadata. */
export function writeArrowColumns(file: string, columns: Record<string, {type: DataType; values: unknown[]}>, metadata: Record<string, string>): void {
  const table = new Table(Object.fromEntries(Object.entries(columns).map(([name, c]) => [name, vectorFromArray(c.values as never[], c.type)])))
  for (const [k, v] of Object.entries(metadata)) table.schema.metadata.set(k, v)
  writeFileSync(file, tableToIPC(table, 'file'))
}

/** Writes rows of a record kind in codiemb's layout but, like codiemb before checksums, without codiemb.batch_sha256 / footer_sha256. */
export function writeWithoutChecksums<K extends RecordKind>(file: string, kind: K, rows: RecordOfKind[K][], metadata: Record<string, string>, batchRows = 4096): void {
  const schema = new Schema(recordFields(kind), new Map([['codiemb.kind', kind], ['codiemb.layout', '1'], ['codiemb.rows', String(rows.length)], ...Object.entries(metadata)]))
  const batches = []
  for (let i = 0; i < rows.length; i += batchRows) batches.push(rowsToBatch(schema, rows.slice(i, i + batchRows) as unknown as Record<string, unknown>[]))
  writeFileSync(file, RecordBatchFileWriter.writeAll(batches).toUint8Array(true))
}
