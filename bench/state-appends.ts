/*
 * Filling a state stream for the key-frame phases (compaction, snapshot): `count`
 * State Protocol changes, change(i) for i = 0..count-1, appended as JSON arrays of
 * BATCH changes by WRITERS concurrent writers, each append answered 204 or the run fails.
 */
const BATCH = 1000;
const WRITERS = 4;

export async function appendChanges(
  streamUrl: string,
  auth: Record<string, string>,
  count: number,
  change: (index: number) => string,
): Promise<void> {
  let next = 0;
  const writer = async () => {
    while (next < count) {
      const from = next;
      next = Math.min(count, from + BATCH);
      const parts: string[] = [];
      for (let index = from; index < next; index++) parts.push(change(index));
      const response = await fetch(streamUrl, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: `[${parts.join(",")}]`,
      });
      if (response.status !== 204) throw new Error(`append: ${response.status} ${await response.text()}`);
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, writer));
}
