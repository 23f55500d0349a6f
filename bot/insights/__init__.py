"""The support lead's dashboard: analytics from the tracker store and tickets, FAQ gaps, charts, report."""
