// edgec report: sorts the tables (click or Enter on a header) and filters the op table, using
// the report's JSON embedded in the page. The page reads the same without it.
//
// Each sortable table names its rows in the JSON (data-rows: ops, weights or steps) and each
// of its rows its index there (data-i); a header names the key it sorts by (data-key). The
// order is kept in the address (#sort=TABLE.KEY.asc|desc), so a sorted view can be shared.
(() => {
  'use strict';
  const source = document.getElementById('edgec-report');
  if (!source) return;
  const report = JSON.parse(source.textContent);
  const rowsOf = { ops: report.plan.ops, weights: report.weights, steps: report.steps };
  const unitOrder = { ane: 0, gpu: 1, cpu: 2 };

  // Keys that are not a field of the row as it stands.
  const derived = {
    unit: (op) => unitOrder[op.unit],
    supported: (op) => op.supported.join(' '),
    onnx_nodes: (op) => op.onnx_nodes.join(' '),
    reasons: (op) => op.reasons.map((r) => r.rule).join(' '),
    elements: (w) => w.shape.reduce((a, b) => a * b, 1),
    ratio: (w) => (w.bytes_after > 0 ? w.bytes_before / w.bytes_after : 0),
    snr_db: (w) => (w.snr_db === 'inf' ? Infinity : w.snr_db),
  };

  const keyOf = (row, index, key) => {
    if (key === 'index') return index;
    if (derived[key]) return derived[key](row);
    return row[key];
  };

  const compare = (a, b) => {
    if (typeof a === 'number' && typeof b === 'number') return a - b;
    return String(a ?? '').localeCompare(String(b ?? ''), undefined, { numeric: true });
  };

  const sortTable = (table, key, direction) => {
    const rows = rowsOf[table.dataset.rows];
    const body = table.tBodies[0];
    if (!rows || !body) return;
    const sign = direction === 'desc' ? -1 : 1;
    const value = (tr) => keyOf(rows[+tr.dataset.i], +tr.dataset.i, key);
    const sorted = Array.from(body.rows).sort(
      (a, b) => sign * compare(value(a), value(b)) || a.dataset.i - b.dataset.i,
    );
    const fragment = document.createDocumentFragment();
    sorted.forEach((tr) => fragment.appendChild(tr));
    body.appendChild(fragment);
    table.querySelectorAll('th[data-key]').forEach((th) => {
      const sorting = th.dataset.key === key;
      th.setAttribute('aria-sort', sorting ? (direction === 'desc' ? 'descending' : 'ascending') : 'none');
    });
  };

  const remember = (table, key, direction) => {
    try {
      history.replaceState(null, '', `#sort=${table.dataset.rows}.${key}.${direction}`);
    } catch (e) {
      // Some viewers forbid changing the address of a local file; sorting still works.
    }
  };

  document.querySelectorAll('table.sortable').forEach((table) => {
    table.querySelectorAll('th[data-key]').forEach((th) => {
      th.tabIndex = 0;
      th.setAttribute('aria-sort', 'none');
      const sort = () => {
        const current = th.getAttribute('aria-sort');
        // Numbers sort largest first on the first click, text A to Z.
        const first = th.classList.contains('num') && th.dataset.key !== 'index' ? 'desc' : 'asc';
        const direction =
          current === 'none' ? first : current === 'ascending' ? 'desc' : 'asc';
        sortTable(table, th.dataset.key, direction);
        remember(table, th.dataset.key, direction);
      };
      th.addEventListener('click', sort);
      th.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          sort();
        }
      });
    });
  });

  const requested = /^#sort=(\w+)\.(\w+)\.(asc|desc)$/.exec(location.hash);
  if (requested) {
    const table = document.querySelector(`table.sortable[data-rows="${requested[1]}"]`);
    if (table && table.querySelector(`th[data-key="${requested[2]}"]`)) {
      sortTable(table, requested[2], requested[3]);
    }
  }

  // The op table's filters: by unit, and by text in the op, its type or its ONNX nodes.
  const filters = document.getElementById('op-filters');
  const opTable = document.getElementById('op-table');
  if (!filters || !opTable) return;
  const search = document.getElementById('op-search');
  const shown = document.getElementById('op-shown');
  const ops = report.plan.ops;
  let unit = '';
  const apply = () => {
    const text = search.value.trim().toLowerCase();
    let visible = 0;
    Array.from(opTable.tBodies[0].rows).forEach((tr) => {
      const op = ops[+tr.dataset.i];
      const haystack = [op.name, op.type].concat(op.onnx_nodes).join('\n').toLowerCase();
      const show = (unit === '' || op.unit === unit) && (text === '' || haystack.includes(text));
      tr.hidden = !show;
      visible += show ? 1 : 0;
    });
    shown.textContent = visible === ops.length ? '' : `${visible} of ${ops.length} ops shown`;
  };
  filters.querySelectorAll('button[data-unit]').forEach((button) => {
    button.addEventListener('click', () => {
      unit = button.dataset.unit;
      filters.querySelectorAll('button[data-unit]').forEach((b) => {
        b.setAttribute('aria-pressed', String(b === button));
      });
      apply();
    });
  });
  search.addEventListener('input', apply);
  filters.hidden = false;
})();
