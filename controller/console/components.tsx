// Small view pieces several console pages render the same way: times, chips and option lists.
// Page-specific shapes (tables, forms) stay with their pages.

/**
 * A time as UTC to the second, the full ISO time on hover. With `age`, console.js shows it as an
 * age ("12 s ago") and keeps that current.
 */
export function Timestamp(props: { at: Date; age?: boolean }) {
  const iso = new Date(props.at).toISOString();
  return (
    <time datetime={iso} data-age={props.age ? "" : undefined} title={iso}>
      {iso.slice(0, 19).replace("T", " ")}Z
    </time>
  );
}

/** A time the browser shows as an age ("12 s ago") and keeps current; "never" without one. */
export function Age(props: { at: Date | null | undefined }) {
  if (!props.at) return <span class="muted">never</span>;
  return <Timestamp at={props.at} age />;
}

/** One chip per item; `none` (if given) is what an empty list shows instead. */
export function Chips(props: { items: string[]; none?: string }) {
  if (props.items.length === 0 && props.none !== undefined) {
    return <span class="muted">{props.none}</span>;
  }
  return <>{props.items.map((item) => <span class="chip">{item}</span>)}</>;
}

/** A host's labels as the `key=value` its chips and targets spell. */
export function labelPairs(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

/**
 * A <select> whose option equal to `value` is selected. An option is its value, or a
 * [value, text] pair when the text a person reads differs; `any` adds a first, empty option
 * (no filter) with that text.
 */
export function Select(props: {
  name: string;
  value: string | number | undefined;
  options: readonly (string | readonly [string, string])[];
  any?: string;
  required?: boolean;
}) {
  return (
    <select name={props.name} required={props.required}>
      {props.any !== undefined ? <option value="">{props.any}</option> : null}
      {props.options.map((option) => {
        const [value, text] = typeof option === "string" ? [option, option] : option;
        return (
          <option
            value={value}
            selected={props.value !== undefined && String(props.value) === value}
          >
            {text}
          </option>
        );
      })}
    </select>
  );
}

/**
 * The header row of a data table; each cell of its rows repeats its column's name as data-label
 * (phones show the rows as cards). A falsy column is left out.
 */
export function TableHead(props: { columns: (string | false)[] }) {
  return (
    <thead>
      <tr>
        {props.columns.filter((c) => c !== false).map((c) => <th scope="col">{c}</th>)}
      </tr>
    </thead>
  );
}
