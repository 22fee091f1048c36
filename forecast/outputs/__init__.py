"""What people look at: charts, figures and the HTML report."""
