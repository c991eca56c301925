# A small stand-in for Homebrew's formula DSL, enough to evaluate aegis-cli.rb as Homebrew would
# on one platform: `ruby formula_dsl.rb FORMULA OS ARCH STAGE PREFIX` prints, as JSON, the url and
# sha256 the formula names there, runs its `install` in STAGE (where the downloaded file is) into
# PREFIX/bin, then runs its `test do` block against what was installed.
require "json"
require "fileutils"

FORMULA, OS, ARCH, STAGE, PREFIX = ARGV

class Formula
  class << self
    attr_reader :seen, :test_block

    def record(key, value)
      (@seen ||= Hash.new { |h, k| h[k] = [] })[key.to_s] << value
    end

    def desc(text) = record(:desc, text)
    def homepage(text) = record(:homepage, text)
    def url(text) = record(:url, text)
    def sha256(text) = record(:sha256, text)
    def on_macos = (OS == "macos" ? yield : nil)
    def on_linux = (OS == "linux" ? yield : nil)
    def on_arm = (ARCH == "arm64" ? yield : nil)
    def on_intel = (ARCH == "x86_64" ? yield : nil)

    def version(text = nil)
      text.nil? ? @version : (@version = text)
    end

    def test(&block)
      @test_block = block
    end
  end

  # The formula's `bin`: install renames a staged file into PREFIX/bin.
  class Bin
    def to_s = File.join(PREFIX, "bin")

    def install(mapping)
      mapping.each do |from, to|
        FileUtils.mkdir_p(to_s)
        FileUtils.cp(from, File.join(to_s, to))
        File.chmod(0o755, File.join(to_s, to))
      end
    end
  end

  def version = self.class.version
  def bin = Bin.new
  def odie(message) = raise(message)

  def shell_output(command)
    out = `#{command}`
    raise "#{command} failed" unless $?.success?

    out
  end

  def assert_match(expected, actual)
    raise "#{actual.inspect} does not contain #{expected.inspect}" unless actual.include?(expected)
  end
end

load FORMULA
formula = AegisCli.new
Dir.chdir(STAGE) { formula.install }
formula.instance_eval(&AegisCli.test_block)
puts JSON.generate(AegisCli.seen.merge("version" => AegisCli.version, "installed" => true))
