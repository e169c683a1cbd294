"""The PyQt5 window (the only part of distpose that imports Qt): `app.main` starts it."""
