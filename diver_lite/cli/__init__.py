"""diver-lite's command line: click at the edge only; library errors become one-line messages."""
