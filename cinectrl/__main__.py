"""`python -m cinectrl`: the same app as the `cinectrl` console script (useful where the script is not on PATH or
resolves to another checkout)."""

from cinectrl.main import app

if __name__ == "__main__":
    app(prog_name="cinectrl")
