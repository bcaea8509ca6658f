"""Building blocks of the chaos suite: traders, order load, SSE watchers, checks and figures."""
