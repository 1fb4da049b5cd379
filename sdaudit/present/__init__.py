"""What people read: words and number formats, tables, charts, the Results view and the report."""
