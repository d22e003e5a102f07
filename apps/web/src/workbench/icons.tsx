// Line icons (16×16, stroke = currentColor) so the UI never depends on the fonts' emoji.
const paths: Record<string, string> = {
  files: 'M3 2h6l4 4v8H3z M9 2v4h4',
  search: 'M7 12A5 5 0 1 0 7 2a5 5 0 0 0 0 10z M10.5 10.5 14 14',
  history: 'M8 14A6 6 0 1 0 2 8 M2 4v4h4 M8 5v3l2 2',
  sparkle: 'M8 1.5 9.5 6.5 14.5 8 9.5 9.5 8 14.5 6.5 9.5 1.5 8 6.5 6.5z',
  gear: 'M8 10.5a2.5 2.5 0 1 0 0-5 2.5 2.5 0 0 0 0 5z M8 1v2 M8 13v2 M1 8h2 M13 8h2 M3 3l1.5 1.5 M11.5 11.5 13 13 M13 3l-1.5 1.5 M4.5 11.5 3 13',
  newFile: 'M3 2h6l4 4v8H3z M8 8v4 M6 10h4',
  newFolder: 'M1.5 4h5l1.5 1.5h6.5v8h-13z M8 7.5v4 M6 9.5h4',
  upload: 'M8 11V2 M4.5 5.5 8 2l3.5 3.5 M2 11v3h12v-3',
  download: 'M8 2v9 M4.5 7.5 8 11l3.5-3.5 M2 11v3h12v-3',
  refresh: 'M13.5 8A5.5 5.5 0 1 1 11.5 3.7 M12 1v3h-3',
  rename: 'M2 14l1-4 8-8 3 3-8 8z M9.5 3.5l3 3',
  trash: 'M2.5 4h11 M6 4V2h4v2 M4 4l1 10h6l1-10',
  close: 'M4 4l8 8 M12 4l-8 8',
  external: 'M9 2h5v5 M14 2 7 9 M12 9v5H2V4h5',
  folder: 'M1.5 3.5h5l1.5 1.5h6.5v8.5h-13z',
  file: 'M3.5 1.5h5.5l3.5 3.5v9.5h-9z',
  chevronRight: 'M6 3l5 5-5 5',
  chevronDown: 'M3 6l5 5 5-5',
  sun: 'M8 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6z M8 1v1.5 M8 13.5V15 M1 8h1.5 M13.5 8H15 M3 3l1 1 M12 12l1 1 M13 3l-1 1 M4 12l-1 1',
  moon: 'M13.5 10A6 6 0 0 1 6 2.5 6 6 0 1 0 13.5 10z',
  branch: 'M5 2v12 M5 10c0-3 6-2 6-6 M11 4a1.5 1.5 0 1 0 0-.1 M5 14a1.5 1.5 0 1 0 0-.1',
  server: 'M2 2.5h12v4H2z M2 9.5h12v4H2z M4.5 4.5h.01 M4.5 11.5h.01 M8 4.5h4 M8 11.5h4',
};

/** Names of the available icons. */
export type IconName = keyof typeof paths;

/** A 16×16 line icon, hidden from assistive technology (label the button instead). */
export function Icon(props: { name: IconName; size?: number }) {
  const size = props.size ?? 16;
  return (
    <svg
      className="svg-icon"
      width={size}
      height={size}
      viewBox="0 0 16 16"
      fill="none"
      stroke="currentColor"
      strokeWidth="1.3"
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden="true"
      focusable="false"
    >
      <path d={paths[props.name]} />
    </svg>
  );
}
