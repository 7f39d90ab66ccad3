"""Claude Enhancer 5.1 Pulumi program.

All stack config is read and validated by components.settings before any
resource is registered; a bad value stops the program with a SettingsError
naming the config key.
"""

from components import program, settings

program.run(settings.from_pulumi())
