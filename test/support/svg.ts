/**
 * A small well-formedness check of an SVG document, for tests of generated pictures (the
 * project has no XML parser, and a test needs none beyond this): one `<svg>` root in the SVG
 * namespace, every element closed in order, attribute values quoted, no stray `<` or `&` in
 * text or attributes. Returns the problems found; empty when none.
 */
export function svgProblems(text: string): string[] {
  const problems: string[] = [];
  const body = text.replace(/^\s*<\?xml[^>]*\?>/, '').replace(/<!--[\s\S]*?-->/g, '');
  const tag = /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/g;
  const stack: string[] = [];
  let roots = 0;
  let at = 0;
  for (let m = tag.exec(body); m !== null; m = tag.exec(body)) {
    checkText(body.slice(at, m.index), problems);
    at = m.index + m[0].length;
    const [, closing, name = '', attrs = '', selfClosing] = m;
    checkText(attrs, problems);
    if (closing) {
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open ?? 'nothing'}>`);
      continue;
    }
    if (stack.length === 0) {
      roots++;
      if (name !== 'svg') problems.push(`root element <${name}>, not <svg>`);
      if (!/\sxmlns="http:\/\/www\.w3\.org\/2000\/svg"/.test(attrs)) problems.push('root <svg> without the SVG namespace');
    }
    if (!selfClosing) stack.push(name);
  }
  checkText(body.slice(at), problems);
  if (roots !== 1) problems.push(`${roots} root elements`);
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(' > ')}`);
  return problems.slice(0, 10);
}

/** Text between tags (or attribute text) must not hold markup or a bare `&`. */
function checkText(text: string, problems: string[]): void {
  if (text.includes('<')) problems.push(`stray markup: ${JSON.stringify(text.slice(text.indexOf('<'), text.indexOf('<') + 40))}`);
  const amp = /&(?!(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);)/.exec(text);
  if (amp) problems.push(`bare &: ${JSON.stringify(text.slice(amp.index, amp.index + 20))}`);
}
