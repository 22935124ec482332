from geochange.cli.main import cli

cli()
