-- Entry point for every scenario: miltertest prints nothing when a script raises an error,
-- so run the scenario (global SCENARIO) under pcall and print the error before failing.
local ok, err = pcall(dofile, SCENARIO)
if not ok then
  mt.echo("ERROR: " .. tostring(err))
  error(err)
end
