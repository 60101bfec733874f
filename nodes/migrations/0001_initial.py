"""Nodes, jobs and the queue state move here from the runs app with their rows: in the state only.

The tables stay runs_* until 0002 renames them; runs 0014 drops the models from its own state."""

import django.db.models.deletion
import django.utils.timezone
import nodes.models
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("runs", "0013_run_storage_failures"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='QueueState',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('paused', models.BooleanField(default=False)),
                        ('changed_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        'db_table': 'runs_queuestate',
                        'verbose_name': 'queue state',
                    },
                ),
                migrations.CreateModel(
                    name='GpuNode',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.SlugField(max_length=64, unique=True)),
                        ('transport', models.CharField(choices=[('local', 'Local (this machine)'), ('ssh', 'SSH')], default='local', max_length=16)),
                        ('launcher', models.CharField(choices=[('docker', 'Docker (real Cosmos)'), ('sim', 'Simulated (Cosmos stand-in)')], default='docker', max_length=16)),
                        ('remote_root', models.CharField(blank=True, help_text='Absolute working folder on the node. Blank on a local node: <data folder>/nodes/<name>.', max_length=500)),
                        ('docker_image', models.CharField(blank=True, help_text='Image with Cosmos installed at /workspace (docker launcher).', max_length=300)),
                        ('checkpoint_dir', models.CharField(blank=True, help_text='Folder of Cosmos checkpoints on the node. Blank: <remote root>/checkpoints.', max_length=500)),
                        ('host', models.CharField(blank=True, help_text='SSH host name or address.', max_length=255)),
                        ('port', models.PositiveIntegerField(default=22)),
                        ('username', models.CharField(blank=True, max_length=64)),
                        ('key_path', models.CharField(blank=True, help_text='Private key file; blank uses the SSH agent and ~/.ssh keys.', max_length=500)),
                        ('host_key', models.TextField(blank=True, help_text='The host key we trust, as "ssh-ed25519 AAAA…"; any other key is refused.')),
                        ('jump_host', models.CharField(blank=True, help_text='Optional bastion to connect through, as user@host[:port].', max_length=300)),
                        ('jump_host_key', models.TextField(blank=True, help_text="The bastion's host key we trust.")),
                        ('python', models.CharField(default='python3', help_text='Interpreter for the Cosmos stand-in (sim launcher).', max_length=300)),
                        ('gpu_count', models.PositiveSmallIntegerField(default=1, help_text='GPU slots: jobs share them, one GPU each.')),
                        ('batch_size', models.PositiveSmallIntegerField(default=4, help_text='Most compatible runs launched as one model invocation (one model load); 1 = never batch.')),
                        ('time_scale', models.FloatField(default=1.0, help_text='Stand-in speed: 1.0 is as slow as a real H100; 0.03 turns ten minutes into 20 seconds.')),
                        ('enabled', models.BooleanField(default=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        'db_table': 'runs_gpunode',
                        'ordering': ['name'],
                        'constraints': [models.CheckConstraint(condition=models.Q(('gpu_count__gte', 1)), name='gpunode_gpu_count_positive'), models.CheckConstraint(condition=models.Q(('batch_size__gte', 1)), name='gpunode_batch_size_positive'), models.CheckConstraint(condition=models.Q(('time_scale__gt', 0)), name='gpunode_time_scale_positive'), models.CheckConstraint(condition=models.Q(('port__gte', 1), ('port__lte', 65535)), name='gpunode_port_valid')],
                    },
                ),
                migrations.CreateModel(
                    name='RemoteJob',
                    fields=[
                        ('id', models.CharField(default=nodes.models.new_job_id, editable=False, max_length=20, primary_key=True, serialize=False)),
                        ('model_type', models.CharField(choices=[('transfer1', 'Cosmos-Transfer1-7B'), ('transfer2_5', 'Cosmos-Transfer2.5-2B'), ('predict2_5', 'Cosmos-Predict2.5-2B'), ('reason1', 'Cosmos-Reason1-7B'), ('upscale4k', 'Cosmos-Transfer1 4K upscaler'), ('prompt_upsampler', 'Prompt upsampler (Pixtral-12B)')], default='transfer1', max_length=32)),
                        ('status', models.CharField(choices=[('starting', 'Starting'), ('running', 'Running'), ('exited', 'Exited'), ('collected', 'Collected'), ('abandoned', 'Abandoned')], default='starting', max_length=16)),
                        ('devices', models.JSONField(default=list, help_text="Indexes of the node's GPUs this job holds.")),
                        ('batched', models.BooleanField(default=False, help_text='Launched with a batch file (one line per run).')),
                        ('directory', models.CharField(blank=True, help_text="The job's folder on the node.", max_length=500)),
                        ('pgid', models.IntegerField(blank=True, null=True)),
                        ('exit_code', models.IntegerField(blank=True, null=True)),
                        ('log_offset', models.BigIntegerField(default=0, help_text='Bytes of job.log already read.')),
                        ('log_tail', models.TextField(blank=True, help_text="The log's last lines, refreshed with each heartbeat.")),
                        ('monitor_token', models.CharField(blank=True, max_length=32)),
                        ('heartbeat_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('launched_at', models.DateTimeField(blank=True, null=True)),
                        ('ended_at', models.DateTimeField(blank=True, null=True)),
                        ('node', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='jobs', to='nodes.gpunode')),
                    ],
                    options={
                        'db_table': 'runs_remotejob',
                        'ordering': ['-created_at'],
                        'indexes': [models.Index(fields=['node', 'status'], name='job_node_status_idx'), models.Index(fields=['status', 'heartbeat_at'], name='job_status_heartbeat_idx')],
                    },
                ),
            ],
        ),
    ]
