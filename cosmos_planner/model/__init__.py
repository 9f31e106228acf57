"""The model protocol: what the model is asked, what it may answer, and what that means.

``protocol`` (GenerationRequest, Completion, the Backend interface), ``cancel`` (the job's
CancelToken), ``prompts`` (presets),
``response_schemas`` (constrained decoding), ``parser`` (answer text to a validated
``ParsedAnswer``), ``plan_schema`` (the published ``PlanV1``), ``results`` (statuses).
"""
