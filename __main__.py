"""Claude Enhancer 5.1 Pulumi program.

All stack config is read and validated by components.settings before any
resource is registered; a bad value stops the program with one line naming the
config key (a pulumi.RunError: Pulumi prints it without a traceback, which stays
for our own bugs).
"""

import pulumi

from components import preflight, program, settings

try:
    stack_settings = settings.from_pulumi()
    preflight.from_pulumi(stack_settings)
    program.run(stack_settings)
except settings.USER_ERRORS as e:
    raise pulumi.RunError(str(e)) from None
