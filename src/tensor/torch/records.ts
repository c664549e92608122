/**
 * The torch backend's per-data-id records, kept on the data id object itself instead of in
 * tf.DataStorage's WeakMap. Same contract as tf.DataStorage (get moves a data id that another backend
 * holds, through the engine, before returning its record; numDataIds counts records), but a lookup is a
 * property read: a small model's training step is bound by host time per kernel (issue 15), and each
 * kernel did two to four WeakMap operations here (set per output, get per input, delete per disposal),
 * whose ephemeron tables also cost the garbage collector time per entry.
 *
 * Data ids are opaque objects to tfjs (the engine keys its own WeakMap by them); the backend makes its
 * own as `{}`, and a data id moved in from another backend gets the same property (cleared, not deleted,
 * when the record goes, so the object keeps its shape).
 */
type DataId = object
type Mover = {moveData(backend: unknown, dataId: DataId): void}

export class RecordStore<T> {
  /** One key per store: two backends never read each other's records. */
  private readonly key = Symbol('torch backend record')
  private count = 0

  constructor(private readonly backend: unknown, private readonly mover: Mover) {}

  get(dataId: DataId): T {
    let rec = (dataId as Record<symbol, T | undefined>)[this.key]
    if (rec === undefined) {
      this.mover.moveData(this.backend, dataId)
      rec = (dataId as Record<symbol, T | undefined>)[this.key]
    }
    return rec as T
  }

  set(dataId: DataId, value: T): void {
    const slot = dataId as Record<symbol, T | undefined>
    if (slot[this.key] === undefined) this.count++
    slot[this.key] = value
  }

  has(dataId: DataId): boolean {
    return (dataId as Record<symbol, T | undefined>)[this.key] !== undefined
  }

  delete(dataId: DataId): boolean {
    const slot = dataId as Record<symbol, T | undefined>
    if (slot[this.key] === undefined) return false
    slot[this.key] = undefined
    this.count--
    return true
  }

  numDataIds(): number {
    return this.count
  }
}

/**
 * Which ATen handles belong to a data id (a kernel returning such a handle unchanged must output an
 * alias, or disposing one data id would free the other's tensor): a flag in the addon's handle, set by
 * own() and by conformTo as output() registers a result. A WeakSet did this before at about 0.5 us per
 * insertion (an identity hash for the handle, an ephemeron table); an addon built before the flag gets
 * the WeakSet still.
 */
export class Ownership<H extends object> {
  private readonly fallback: WeakSet<H> | undefined

  /**
   * `claimed(h)`: called on add, so a handle marked owned is never freed as a kernel's temporary (the
   * backend takes it out of its temporaries; releaseTemps frees what is left without asking).
   */
  constructor(
    private readonly addon: {own?(h: H): void; owned?(h: H): boolean; conformTo?: unknown},
    private readonly claimed: (h: H) => void = () => {},
  ) {
    this.fallback = addon.own && addon.owned && addon.conformTo ? undefined : new WeakSet<H>()
  }

  /** Whether the addon's conformTo marks ownership itself (else output() must call add). */
  get native(): boolean {
    return this.fallback === undefined
  }

  has(h: H): boolean {
    return this.fallback ? this.fallback.has(h) : this.addon.owned!(h)
  }

  add(h: H): void {
    this.claimed(h)
    if (this.fallback) this.fallback.add(h)
    else this.addon.own!(h)
  }
}
