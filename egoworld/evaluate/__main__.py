"""`python -m egoworld.evaluate RUN --data DATA` (same as `egoworld eval`)."""
import typer

from egoworld.evaluate.cli import eval_command

if __name__ == "__main__":
    typer.run(eval_command)
