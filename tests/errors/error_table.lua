-- error: tests/errors/error_table.lua:2: error raised with a table instead of a message
error({ code = 3 })
