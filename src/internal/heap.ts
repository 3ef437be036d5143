/**
 * A binary min-heap kept in an array, ordered by `before`: the timed waiters' deadlines (`waiters.ts`) and the
 * bearers' alarms (`alarms.ts`) both use it.
 *
 * @internal
 */

/** Adds `item` to `heap`. @internal */
export const push = <A>(heap: Array<A>, item: A, before: (a: A, b: A) => boolean): void => {
  let i = heap.length
  heap.push(item)
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (!before(item, heap[parent]!)) break
    heap[i] = heap[parent]!
    i = parent
  }
  heap[i] = item
}

/** Removes and returns the first item of a non-empty `heap`. @internal */
export const pop = <A>(heap: Array<A>, before: (a: A, b: A) => boolean): A => {
  const top = heap[0]!
  const last = heap.pop()!
  if (heap.length > 0) {
    let i = 0
    const n = heap.length
    while (true) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && before(heap[right]!, heap[left]!) ? right : left
      if (!before(heap[child]!, last)) break
      heap[i] = heap[child]!
      i = child
    }
    heap[i] = last
  }
  return top
}

/**
 * The items of `heap` that `keep` keeps, as a heap: sorted by `before`, which a heap allows. For dropping the
 * cancelled entries once they outnumber the live ones. @internal
 */
export const compact = <A>(
  heap: ReadonlyArray<A>,
  keep: (item: A) => boolean,
  before: (a: A, b: A) => boolean
): Array<A> => heap.filter(keep).sort((a, b) => (before(a, b) ? -1 : 1))
