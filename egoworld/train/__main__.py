"""`python -m egoworld.train DATA --out RUN …` — the entry point torchrun needs:

    torchrun --nproc_per_node=2 -m egoworld.train DATA --out RUN --preset tiny --minutes 20
"""
import typer

from egoworld.train.cli import train_command

if __name__ == "__main__":
    typer.run(train_command)
