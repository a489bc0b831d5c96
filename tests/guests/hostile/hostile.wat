;; hostile.wat: a component that misbehaves on request, for limits and hostile-guest tests.
;;
;;     package test:hostile;
;;     interface api {
;;         spin: func();                      // loops forever
;;         count: func(n: u32) -> u32;        // loops n times, returns n
;;         grow: func(pages: u32) -> s32;     // memory.grow: the old size in pages, or -1
;;         pages: func() -> u32;              // memory.size
;;         recurse: func();                   // recurses until the stack runs out
;;         out-of-bounds: func() -> u32;      // loads far past the end of memory
;;         bad-string: func() -> string;      // returns bytes that are not UTF-8
;;         huge-list: func() -> list<u8>;     // returns a list longer than memory
;;     }
;;     world hostile { export api; }
(component
  (core module $m
    (memory (export "memory") 1)
    ;; at 0: the (ptr, len) pair for bad-string, at 16: the (ptr, len) pair for huge-list,
    ;; at 32: two bytes that are not UTF-8
    (data (i32.const 0) "\20\00\00\00\02\00\00\00")
    (data (i32.const 16) "\00\00\00\00\ff\ff\ff\7f")
    (data (i32.const 32) "\ff\fe")
    (func (export "spin")
      (loop $forever (br $forever)))
    (func (export "count") (param $n i32) (result i32)
      (local $i i32)
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $next)))
      (local.get $i))
    (func (export "grow") (param $pages i32) (result i32)
      (memory.grow (local.get $pages)))
    (func (export "pages") (result i32)
      (memory.size))
    (func $recurse (export "recurse")
      (call $recurse))
    (func (export "out-of-bounds") (result i32)
      (i32.load (i32.const 0x7ffffff0)))
    (func (export "bad-string") (result i32)
      (i32.const 0))
    (func (export "huge-list") (result i32)
      (i32.const 16))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      unreachable))
  (core instance $i (instantiate $m))
  (alias core export $i "memory" (core memory $mem))
  (alias core export $i "realloc" (core func $realloc))
  (func $spin (canon lift (core func $i "spin")))
  (func $count (param "n" u32) (result u32) (canon lift (core func $i "count")))
  (func $grow (param "pages" u32) (result s32) (canon lift (core func $i "grow")))
  (func $pages (result u32) (canon lift (core func $i "pages")))
  (func $recurse (canon lift (core func $i "recurse")))
  (func $oob (result u32) (canon lift (core func $i "out-of-bounds")))
  (func $bad-string (result string)
    (canon lift (core func $i "bad-string") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (func $huge-list (result (list u8))
    (canon lift (core func $i "huge-list") (memory $mem) (realloc $realloc)))
  (instance $api
    (export "spin" (func $spin))
    (export "count" (func $count))
    (export "grow" (func $grow))
    (export "pages" (func $pages))
    (export "recurse" (func $recurse))
    (export "out-of-bounds" (func $oob))
    (export "bad-string" (func $bad-string))
    (export "huge-list" (func $huge-list)))
  (export "test:hostile/api" (instance $api)))
