"""ament_python package setup; also the pip entry point (``pip install .[all]``)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'cosmos_planner'

# ROS 2 kilted from PyPI wheels, pinned: these are what the tests ran against. On a ROS
# machine they come from the distro instead and this extra is not installed.
ROS = [
    'ros-kilted-rclpy==9.1.2', 'ros-kilted-rmw-fastrtps-cpp==9.3.3',
    'ros-kilted-std-msgs==5.5.1', 'ros-kilted-std-srvs==5.5.1',
    'ros-kilted-sensor-msgs==5.5.1', 'ros-kilted-geometry-msgs==5.5.1',
    'ros-kilted-nav-msgs==5.5.1', 'ros-kilted-trajectory-msgs==5.5.1',
    'ros-kilted-visualization-msgs==5.5.1', 'ros-kilted-diagnostic-msgs==5.5.1',
    'ros-kilted-lifecycle-msgs==2.3.0', 'ros-kilted-builtin-interfaces==2.3.0',
    'ros-kilted-rosgraph-msgs==2.3.0', 'ros-kilted-ament-index-python==1.11.0',
]
MODEL = ['torch>=2.6,<=2.14.1', 'torchvision>=0.21,<=0.29.1', 'transformers>=5.0,<6',
         'xgrammar>=0.2.8,<0.3']
REMOTE = ['openai>=1.60']
BAG = ['rosbags>=0.11,<0.12']
SIM = ['mujoco>=3.3']
TEST = ['pytest>=8', 'hypothesis>=6.100', 'jsonschema>=4.20', 'mcap>=1.2', 'mcap-ros2-support>=0.5',
        'flake8>=7', 'pydocstyle>=6', 'ros-kilted-ament-flake8==0.19.2',
        'ros-kilted-ament-pep257==0.19.2', 'ros-kilted-ament-lint==0.19.2',
        'colcon-common-extensions>=0.3', 'import-linter>=2.17', 'mypy>=1.10']

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'bench', 'bench.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.py')),
        ('share/' + PACKAGE + '/config', glob('config/*.*')),
        ('share/' + PACKAGE + '/config/prompts', glob('config/prompts/*.*')),
    ],
    python_requires='>=3.10',
    install_requires=['numpy>=1.24', 'opencv-python-headless>=4.8', 'pydantic>=2.5',
                      'PyYAML>=6', 'tqdm>=4.60'],
    extras_require={
        'ros': ROS, 'model': MODEL, 'remote': REMOTE, 'bag': BAG, 'sim': SIM, 'test': TEST,
        'all': ROS + MODEL + REMOTE + BAG + SIM,
    },
    zip_safe=True,
    maintainer='cosmos_planner maintainers',
    maintainer_email='maintainers@cosmos-planner.invalid',
    description='Plan gripper trajectories from camera frames with NVIDIA Cosmos Reason 2.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'cosmos-planner = cosmos_planner.cli.main:main',
            'planner_node = cosmos_planner.ros.planner_node:main',
            'sim_node = cosmos_planner.sim.standalone:main',
        ],
        # Backends that live outside backends/ register here (see backends/registry.py).
        'cosmos_planner.backends': [
            'expert = cosmos_planner.sim.expert:ScriptedExpertBackend [sim]',
        ],
    },
)
