"""The Processing algorithms: their parameters mirror the options of `geochange simulate|synth`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputFile,
    QgsProcessingOutputRasterLayer,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
    QgsProcessingUtils,
)
from qgis.PyQt.QtGui import QIcon

from .layers import load_results
from .listings import Entry, Listings, listings
from .runner import run_cli

ICON = Path(__file__).with_name("icon.png")

DEVICES = ("auto", "cpu", "cuda")
DEFAULT_EVENTS = (("building_add", "count", "30"), ("deforestation", "fraction", "0.2"))
"""The Events field's starting value, offered only where the command lists these events and
parameters: a geochange that renamed them gets an empty field, not a run that fails."""

# Result keys of the CLI and the Processing outputs they become: Processing declares its
# outputs before a run, so only the keys known here are declared; a file under any other key
# in the command's result is still returned (as the key in capitals) and loaded as a layer.
OUTPUT_KEYS = {
    "t1_landcover": "T1_LANDCOVER",
    "t2_landcover": "T2_LANDCOVER",
    "change": "CHANGE",
    "changes": "CHANGES",
    "run": "RUN",
    "t1": "T1",
    "t2": "T2",
}
OUTPUT_TITLES = {
    "t1_landcover": "Land cover before (t1)",
    "t2_landcover": "Land cover after (t2)",
    "change": "Change mask",
    "changes": "Change polygons",
    "run": "Run record (run.json)",
    "t1": "Image before (t1)",
    "t2": "Image after (t2)",
}

# The CLI's options as the dialog names them (and the parameter names of processing.run), so an
# error message from the command speaks of what the user can see and change.
OPTION_FIELDS = {
    "--classes": "Class scheme (CLASSES, CLASSES_FILE)",
    "--events": "Events (EVENTS)",
    "--buildings": "Building footprints (BUILDINGS)",
    "--changes": "Drawn changes (CHANGES)",
    "--where": "Confine events to polygons (WHERE)",
    "--seed": "Random seed (SEED)",
    "--min-area": "Smallest change (MIN_AREA)",
    "--crs": "Output CRS (CRS)",
    "--gsd": "Pixel size (GSD)",
    "--block-size": "Block size (BLOCK_SIZE)",
    "--overwrite": "Replace an existing output folder (OVERWRITE)",
    "--image": "Real image (IMAGE)",
    "--model": "Model folder (MODEL)",
    "--device": "Device (DEVICE)",
    "--steps": "Denoising steps (STEPS)",
    "-o": "Output folder (OUTPUT)",
}


LABEL_CHARS = 64
"""The longest class-scheme choice: a longer description would widen the dialog past 1000 px
(the help gives it whole)."""


def scheme_label(scheme: Entry) -> str:
    """``name: description``, cut at LABEL_CHARS."""
    label = f"{scheme.name}: {scheme.description}"
    return label if len(label) <= LABEL_CHARS else f"{label[: LABEL_CHARS - 1]}…"


def schemes_help(schemes: tuple[Entry, ...]) -> str:
    """The class schemes the command lists, one line each."""
    lines = [
        "Class scheme: what the values of the land-cover raster mean, as geochange classes "
        "lists them; or a YAML file that maps them (Class scheme file)."
    ]
    lines += [f"- {s.name}: {s.description}" for s in schemes]
    return "\n".join(lines)


def default_events(events: tuple[Entry, ...]) -> str:
    """DEFAULT_EVENTS as an --events value, or empty if the command lacks one of them."""
    known = {event.name: event.parameters for event in events}
    if all(param in known.get(name, ()) for name, param, _ in DEFAULT_EVENTS):
        return ",".join(f"{name}:{param}={value}" for name, param, value in DEFAULT_EVENTS)
    return ""


def events_help(events: tuple[Entry, ...]) -> str:
    """The events the command lists, one line each: name, parameters and what it does."""
    if not events:
        return "Events: a comma-separated list of event:parameter=value (see geochange events)."
    example = default_events(events) or events[0].name
    lines = [f"Events: a comma-separated list such as {example}. The events and their parameters:"]
    lines += [f"- {e.name} ({', '.join(e.parameters)}): {e.description}" for e in events]
    lines.append("The command geochange events lists their defaults and ranges.")
    return "\n".join(lines)


def _advanced(parameter: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
    parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return parameter


class GeochangeAlgorithm(QgsProcessingAlgorithm):
    """Shared parameters and the run of one `geochange` subcommand."""

    command = ""
    stages: tuple[str, ...] = ("scan", "events", "write", "finish")

    def __init__(self) -> None:
        super().__init__()
        self.listed = Listings()
        self._files: dict[str, str] = {}
        self._results: dict[str, Any] = {}
        self._load = False
        self._group = ""

    def createInstance(self) -> GeochangeAlgorithm:
        return type(self)()

    def name(self) -> str:
        return self.command

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def initAlgorithm(self, config: dict | None = None) -> None:
        """The parameters; the class schemes and the events come from the command's listings
        (their order is the command's, so an index keeps its meaning while it lists the same
        names). With no listing, CLASSES is left optional so the dialog shows the reason
        (checkParameterValues) rather than a bare "missing value"."""
        self.listed = listings()
        schemes = self.listed.schemes
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Land-cover raster"))
        self.addParameter(
            QgsProcessingParameterEnum(
                "CLASSES",
                "Class scheme",
                options=[scheme_label(s) for s in schemes],
                defaultValue=0 if schemes else None,
                optional=not schemes,
            )
        )
        self.addParameter(
            _advanced(
                QgsProcessingParameterFile(
                    "CLASSES_FILE",
                    "Class scheme file (YAML; replaces the above)",
                    fileFilter="YAML files (*.yaml *.yml)",
                    optional=True,
                )
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                "EVENTS",
                "Events",
                defaultValue=default_events(self.listed.events),
                optional=True,
            )
        )
        polygons = [QgsProcessing.TypeVectorPolygon]
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "BUILDINGS", "Building footprints", types=polygons, optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "CHANGES",
                "Drawn changes (field to_class)",
                types=polygons,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "WHERE", "Confine events to polygons", types=polygons, optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "SEED", "Random seed", QgsProcessingParameterNumber.Integer, defaultValue=0
            )
        )
        self.add_command_parameters()
        self.addParameter(
            _advanced(
                QgsProcessingParameterNumber(
                    "MIN_AREA",
                    "Smallest change (m²)",
                    QgsProcessingParameterNumber.Double,
                    defaultValue=4.0,
                    minValue=0.0,
                )
            )
        )
        self.addParameter(
            _advanced(
                QgsProcessingParameterCrs("CRS", "Output CRS (default: the input's)", None, True)
            )
        )
        self.addParameter(
            _advanced(
                QgsProcessingParameterNumber(
                    "GSD",
                    "Pixel size in metres (default: the input's)",
                    QgsProcessingParameterNumber.Double,
                    optional=True,
                    minValue=0.0,
                )
            )
        )
        self.addParameter(
            _advanced(
                QgsProcessingParameterNumber(
                    "BLOCK_SIZE",
                    "Block size in pixels (multiple of 512)",
                    QgsProcessingParameterNumber.Integer,
                    defaultValue=2048,
                    minValue=512,
                )
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                "OVERWRITE", "Replace an existing output folder", defaultValue=False
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                "LOAD_RESULTS", "Load the results as layers", defaultValue=True
            )
        )
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        for key, output in OUTPUT_KEYS.items():
            if key in ("t1", "t2") and self.command != "synth":
                continue
            title = OUTPUT_TITLES[key]
            if key == "changes":
                self.addOutput(QgsProcessingOutputVectorLayer(output, title))
            elif key == "run":
                self.addOutput(QgsProcessingOutputFile(output, title))
            else:
                self.addOutput(QgsProcessingOutputRasterLayer(output, title))

    def checkParameterValues(
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> tuple[bool, str]:
        """Refuses to run, saying why, when the command could not list its events and schemes."""
        if self.listed.error:
            return False, self.listed.error
        return super().checkParameterValues(parameters, context)

    def help_prefix(self) -> str:
        """The reason the command could not be asked, to head the help."""
        if not self.listed.error:
            return ""
        return (
            "The geochange command could not be asked for its events and class schemes, so "
            f"this dialog cannot offer them: {self.listed.error}\n"
        )

    def add_command_parameters(self) -> None:
        """Parameters only this subcommand has."""

    def command_arguments(
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> list[str]:
        """Options only this subcommand has."""
        return []

    def _vector_argument(
        self,
        parameters: dict[str, Any],
        name: str,
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> str | None:
        """A path the CLI can read: the layer's file, or a GeoPackage copy of a memory layer."""
        if parameters.get(name) in (None, ""):
            return None
        path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, name, context, ["gpkg", "shp", "geojson"], "gpkg", feedback
        )
        if not path:
            return None
        return f"{path}|layername={layer_name}" if layer_name else path

    def arguments(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
        output: Path,
    ) -> list[str]:
        """The command line after the executable, without ``--json``."""
        layer = self.parameterAsRasterLayer(parameters, "INPUT", context)
        if layer is None:
            raise QgsProcessingException("No land-cover raster was given (INPUT)")
        if layer.providerType() != "gdal":
            raise QgsProcessingException(
                f"The land-cover layer {layer.name()} is not a file: save it as a GeoTIFF "
                "(Export › Save As…) and choose that"
            )
        args = [self.command, layer.source(), "--classes", self._classes(parameters, context)]
        args += ["-o", str(output)]
        events = self.parameterAsString(parameters, "EVENTS", context).strip()
        if events:
            args += ["--events", events]
        changes = self.parameterAsVectorLayer(parameters, "CHANGES", context)
        if changes is not None and changes.fields().indexFromName("to_class") < 0:
            raise QgsProcessingException(
                f"The layer {changes.name()} chosen as Drawn changes (CHANGES) has no field "
                "to_class: add a text field to_class holding the class each polygon becomes "
                "(a name such as water, or a code 1-8)"
            )
        for name, option in (
            ("BUILDINGS", "--buildings"),
            ("CHANGES", "--changes"),
            ("WHERE", "--where"),
        ):
            path = self._vector_argument(parameters, name, context, feedback)
            if path:
                args += [option, path]
        args += ["--seed", str(self.parameterAsInt(parameters, "SEED", context))]
        args += ["--min-area", str(self.parameterAsDouble(parameters, "MIN_AREA", context))]
        args += ["--block-size", str(self.parameterAsInt(parameters, "BLOCK_SIZE", context))]
        crs = self.parameterAsCrs(parameters, "CRS", context)
        if crs.isValid():
            args += ["--crs", crs.authid() or crs.toWkt()]
        if parameters.get("GSD") not in (None, ""):
            args += ["--gsd", str(self.parameterAsDouble(parameters, "GSD", context))]
        if self.parameterAsBoolean(parameters, "OVERWRITE", context):
            args.append("--overwrite")
        return args + self.command_arguments(parameters, context)

    def _classes(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str:
        """The --classes value: the YAML file if given, else the chosen scheme's name."""
        path = self.parameterAsFile(parameters, "CLASSES_FILE", context)
        if path:
            return path
        schemes = self.listed.schemes
        index = self.parameterAsEnum(parameters, "CLASSES", context)
        if not 0 <= index < len(schemes):
            raise QgsProcessingException(self.listed.error or "No class scheme (CLASSES)")
        return schemes[index].name

    def processAlgorithm(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        output = Path(self.parameterAsFileOutput(parameters, "OUTPUT", context))
        overwrite = self.parameterAsBoolean(parameters, "OVERWRITE", context)
        if output.is_dir() and not any(output.iterdir()):
            # Processing may create an empty destination folder; geochange makes its own.
            output.rmdir()
        elif output.exists() and not overwrite:
            raise QgsProcessingException(
                f"The output folder {output} already exists: choose another Output folder "
                "(OUTPUT), or tick Replace an existing output folder (OVERWRITE)"
            )
        args = self.arguments(parameters, context, feedback, output)
        schemes = [scheme.name for scheme in self.listed.schemes]
        result = run_cli(args, feedback, self.stages, fields=OPTION_FIELDS, values=schemes)
        self._files = {key: str(path) for key, path in result.get("files", {}).items()}
        self._load = self.parameterAsBoolean(parameters, "LOAD_RESULTS", context)
        temporary = Path(QgsProcessingUtils.tempFolder()) in output.parents
        self._group = f"geochange {self.command}" if temporary else output.name
        changes = result.get("changes", {})
        if changes:
            feedback.pushInfo(
                f"{changes.get('polygons', 0)} change polygons; area changed by event (m²): "
                f"{changes.get('area_m2_by_event', {})}"
            )
        self._results = {"OUTPUT": str(output)}
        for key, path in self._files.items():
            self._results[OUTPUT_KEYS.get(key, key.upper())] = path
        return self._results

    def postProcessAlgorithm(
        self, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        """Loads the layers here, on the main thread, once the subprocess has finished."""
        if self._load and self._files:
            load_results(self._files, self._group, context.project(), feedback)
        return self._results


class SimulateAlgorithm(GeochangeAlgorithm):
    """`geochange simulate`: land cover before/after, change raster and polygons."""

    command = "simulate"

    def displayName(self) -> str:
        return "Simulate land-cover change"

    def shortHelpString(self) -> str:
        return (
            f"{self.help_prefix()}"
            "Simulates change events on a land-cover raster with the geochange command and "
            "loads the land cover before (t1) and after (t2), the change mask and the change "
            "polygons (styled by event).\n"
            f"{schemes_help(self.listed.schemes)}\n"
            f"{events_help(self.listed.events)}\n"
            "Drawn changes: a polygon layer with a text field to_class (a class name such as "
            "water, or a code 1-8) and an optional field event (a label); each polygon becomes "
            "that class. Confine events to polygons: the events change land inside them only.\n"
            "Smallest change: changes smaller than this many m² are undone, or merged into the "
            "change beside them, in every output.\n"
            "The geochange command is the one set in Plugins › geochange › Settings…, or the "
            "one on PATH."
        )


class SynthAlgorithm(GeochangeAlgorithm):
    """`geochange synth`: everything simulate writes, plus the painted t1/t2 images."""

    command = "synth"
    stages = ("scan", "events", "write", "paint", "finish images", "finish")

    def displayName(self) -> str:
        return "Synthesize change images"

    def shortHelpString(self) -> str:
        return (
            f"{self.help_prefix()}"
            "Simulates change events like Simulate land-cover change, then paints the before "
            "(t1) and after (t2) RGB images with a semantic latent diffusion model and loads "
            "them with the land cover and change layers.\n"
            "Real image: an RGB image of the region; t1 is then this image and t2 keeps its "
            "unchanged land.\n"
            "Model folder: a model written by geochange train diffusion; empty for the model "
            "shipped with geochange.\n"
            "Device: auto uses a CUDA GPU when there is one."
        )

    def add_command_parameters(self) -> None:
        self.addParameter(
            QgsProcessingParameterRasterLayer("IMAGE", "Real image (RGB)", optional=True)
        )
        self.addParameter(
            QgsProcessingParameterFile(
                "MODEL",
                "Model folder (empty: the shipped model)",
                behavior=QgsProcessingParameterFile.Folder,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum("DEVICE", "Device", options=DEVICES, defaultValue=0)
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "STEPS",
                "Denoising steps",
                QgsProcessingParameterNumber.Integer,
                defaultValue=20,
                minValue=1,
            )
        )

    def command_arguments(
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> list[str]:
        model = self.parameterAsFile(parameters, "MODEL", context) or "default"
        args = ["--model", model]
        args += ["--device", DEVICES[self.parameterAsEnum(parameters, "DEVICE", context)]]
        args += ["--steps", str(self.parameterAsInt(parameters, "STEPS", context))]
        image = self.parameterAsRasterLayer(parameters, "IMAGE", context)
        if image is not None:
            args += ["--image", image.source()]
        return args
