"""Excerpts of inductor's generated code from a TORCH_LOGS=output_code log: each kernel whose name holds one of the
given substrings (its definition), and the lines that launch it with a few lines either side.

    python3 scripts/device/code_excerpt.py LOG SUBSTRING [SUBSTRING ...]"""
import re
import sys


def main() -> None:
    lines = open(sys.argv[1], errors="replace").read().splitlines()
    lines = [re.sub(r"^[VIW]\d{4} [0-9:.]+ \d+ \S+\] \[[^\]]*\] \[__output_code\] ?", "", x) for x in lines]
    for key in sys.argv[2:]:
        names = sorted({m for x in lines for m in re.findall(r"(triton_\w*" + re.escape(key) + r"\w*)", x)})
        for name in names:
            print(f"######## {name}")
            for i, x in enumerate(lines):
                if x.startswith(f"{name} = async_compile.triton("):
                    end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("''', device_str")), i + 80)
                    print("\n".join(lines[i:end + 1]))
                elif f"{name}.run(" in x:
                    print("---- launched:")
                    print("\n".join(lines[max(0, i - 14):i + 3]))


if __name__ == "__main__":
    main()
