// A minimal observable store and a hook that re-renders a component only when the slice it
// selects changes (by identity). State is replaced immutably, so slices are cheap to compare.

import { useEffect, useReducer, useRef } from 'preact/hooks';

export interface Store<T> {
  get(): T;
  set(patch: Partial<T> | ((s: T) => Partial<T>)): void;
  subscribe(fn: () => void): () => void;
}

export function createStore<T extends object>(initial: T): Store<T> {
  let state = initial;
  const subs = new Set<() => void>();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    for (const fn of Array.from(subs)) fn();
  };
  return {
    get: () => state,
    set(patch) {
      const p = typeof patch === 'function' ? patch(state) : patch;
      state = { ...state, ...p };
      // Batch bursts of updates (a replay of many frames) into one render pass.
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(flush);
      }
    },
    subscribe(fn) {
      subs.add(fn);
      return () => subs.delete(fn);
    },
  };
}

export function useStore<T extends object, S>(store: Store<T>, select: (s: T) => S): S {
  const [, force] = useReducer((n: number) => n + 1, 0);
  const selectRef = useRef(select);
  selectRef.current = select;
  const value = select(store.get());
  const valueRef = useRef(value);
  valueRef.current = value;
  useEffect(
    () =>
      store.subscribe(() => {
        const next = selectRef.current(store.get());
        if (!Object.is(next, valueRef.current)) force(0);
      }),
    [store],
  );
  return value;
}
