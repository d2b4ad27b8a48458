# The tests of calibrate_npy (cmake -DEXE=<calibrate_npy> -DDIR=<scratch dir> -DMODE=demo|corrupt -P ...).
#   demo:    the demo's minmax qparams equal hand-computed values (float32, checked with numpy:
#            ramp = i / 100, i = 0..255: u8 scale f32(2.55f / 255) = 0.01f, zero point 0; s8
#            symmetric scale f32(2.55f / 127.5) = 0.02f; centered = (i - 128) / 100: u8 scale
#            0.01f, zero point 0 - rint(-1.28f / 0.01f) = 128; s8 scale f32(1.28f / 127.5)),
#            and every other method runs and picks a range inside the observed one.
#   corrupt: each file in DIR/corrupt (and a missing one) makes calibrate_npy exit with 1,
#            name the file and say what is wrong, and write no output; bad flags exit with 2.
# Numbers are compared as doubles (CMake's EQUAL / LESS); "%.9g" of a float reads back exactly.
cmake_minimum_required(VERSION 3.19)  # string(JSON)

function(run out_rc out_err)
  execute_process(COMMAND ${EXE} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(${out_rc} "${rc}" PARENT_SCOPE)
  set(${out_err} "${err}" PARENT_SCOPE)
endfunction()

# expect(<json> <tensor> <field> <value>): tensors.<tensor>.<field> == value
function(expect json tensor field want)
  string(JSON got GET "${json}" tensors ${tensor} ${field})
  if(NOT got EQUAL want)
    message(FATAL_ERROR "${tensor}.${field} = ${got}, expected ${want}")
  endif()
endfunction()

file(REMOVE_RECURSE ${DIR})

if(MODE STREQUAL "demo")
  run(rc err --demo ${DIR} --method minmax --scheme u8 --out ${DIR}/minmax_u8.json)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "calibrate_npy --demo failed (${rc}): ${err}")
  endif()
  file(READ ${DIR}/minmax_u8.json j)
  expect("${j}" ramp scale 0.00999999978)  # 0.01f
  expect("${j}" ramp zero_point 0)
  expect("${j}" ramp count 256)
  expect("${j}" centered scale 0.00999999978)
  expect("${j}" centered zero_point 128)
  string(JSON method GET "${j}" tensors ramp method)
  string(JSON scheme GET "${j}" tensors ramp scheme)
  if(NOT method STREQUAL "minmax" OR NOT scheme STREQUAL "u8 affine")
    message(FATAL_ERROR "ramp: method '${method}', scheme '${scheme}'")
  endif()

  run(rc err --method minmax --scheme s8 --out ${DIR}/minmax_s8.json ${DIR})
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "calibrate_npy --scheme s8 failed (${rc}): ${err}")
  endif()
  file(READ ${DIR}/minmax_s8.json j)
  expect("${j}" ramp scale 0.0199999996)  # 0.02f
  expect("${j}" ramp zero_point 0)
  expect("${j}" centered scale 0.0100392159)  # f32(1.28f / 127.5)
  expect("${j}" centered zero_point 0)

  foreach(method histogram percentile mse entropy)
    run(rc err --method ${method} --out ${DIR}/${method}.json ${DIR})
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "calibrate_npy --method ${method} failed (${rc}): ${err}")
    endif()
    file(READ ${DIR}/${method}.json j)
    foreach(t ramp centered relu_act)
      string(JSON scale GET "${j}" tensors ${t} scale)
      string(JSON lo GET "${j}" tensors ${t} range 0)
      string(JSON hi GET "${j}" tensors ${t} range 1)
      string(JSON obs_lo GET "${j}" tensors ${t} observed 0)
      string(JSON obs_hi GET "${j}" tensors ${t} observed 1)
      if(NOT scale GREATER 0 OR lo LESS obs_lo OR hi GREATER obs_hi OR NOT lo LESS hi)
        message(FATAL_ERROR "${method}: ${t}: scale ${scale}, range [${lo}, ${hi}], observed [${obs_lo}, ${obs_hi}]")
      endif()
    endforeach()
  endforeach()
  # relu_act's 0.2% outliers: the entropy method clips them, minmax cannot
  string(JSON hi GET "${j}" tensors relu_act range 1)
  string(JSON obs_hi GET "${j}" tensors relu_act observed 1)
  if(NOT hi LESS obs_hi)
    message(FATAL_ERROR "entropy: relu_act range ends at ${hi}, the observed max ${obs_hi}: outliers not clipped")
  endif()

elseif(MODE STREQUAL "corrupt")
  run(rc err --demo ${DIR} --out ${DIR}/demo.json)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "calibrate_npy --demo failed (${rc}): ${err}")
  endif()
  set(cases
    "truncated|truncated: shape \\(100,\\) of '<f4' needs 400 data bytes, the file has 200"
    "header_length|truncated: the file ends inside the header \\(65535 header bytes declared\\)"
    "float64|wrong dtype: the file holds '<f8'"
    "not_npy|not a .npy file"
    "nan|argument 'x\\[i\\] \\(index\\)' = 1: calibration data must be finite"
    "empty|the tensor has no elements"
    "missing|no such file")
  foreach(c IN LISTS cases)
    string(FIND "${c}" "|" bar)
    string(SUBSTRING "${c}" 0 ${bar} name)
    math(EXPR bar "${bar} + 1")
    string(SUBSTRING "${c}" ${bar} -1 why)
    set(file ${DIR}/corrupt/${name}.npy)
    string(REGEX REPLACE "([][+.*?()^$|\\])" "\\\\\\1" file_re "${file}")  # the path as a regex
    run(rc err --out ${DIR}/bad.json ${file})
    if(NOT rc EQUAL 1 OR NOT err MATCHES "'${file_re}'.*${why}")
      message(FATAL_ERROR "${name}.npy: exit ${rc}, expected 1 and an error naming '${file}' and \"${why}\"; got: ${err}")
    endif()
    if(EXISTS ${DIR}/bad.json)
      message(FATAL_ERROR "${name}.npy: output written despite the error")
    endif()
  endforeach()
  # one bad file among good ones still fails, and names it
  run(rc err --out ${DIR}/bad.json ${DIR} ${DIR}/corrupt/truncated.npy)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "truncated.npy" OR EXISTS ${DIR}/bad.json)
    message(FATAL_ERROR "good files + truncated.npy: exit ${rc}: ${err}")
  endif()
  run(rc err --method kl ${DIR})
  if(NOT rc EQUAL 2 OR NOT err MATCHES "--method 'kl'")
    message(FATAL_ERROR "--method kl: exit ${rc}: ${err}")
  endif()
  run(rc err --scheme u4 ${DIR})
  if(NOT rc EQUAL 2 OR NOT err MATCHES "--scheme 'u4'")
    message(FATAL_ERROR "--scheme u4: exit ${rc}: ${err}")
  endif()

else()
  message(FATAL_ERROR "MODE must be demo or corrupt, not '${MODE}'")
endif()
